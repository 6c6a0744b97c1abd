// The device-neutral part of the layer_norm family (backend.h): the operand
// checks, shared by every device.
#pragma once

#include <cstdint>

#include "topkformer/core/tensor.h"

namespace topkformer::kernels {

// Forward: x, y, gamma and beta contiguous, gamma and beta of x's last
// extent. Returns that extent.
std::int64_t check_layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                              const Tensor& y);

// Backward: x, dy and dx contiguous. Returns x's last extent.
std::int64_t check_layer_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& dx);

}  // namespace topkformer::kernels
