// The operand checks of Backend::topk_rows, shared by every device.
#pragma once

#include <cstdint>

#include "topkformer/core/tensor.h"

namespace topkformer::kernels {

// Checks x [..., n], values and indices [..., k] (x's shape with the last
// extent k, values of x's dtype), all contiguous, and 1 <= k <= n. The index
// dtype is checked where the kernel dispatches on it.
void check_topk_rows(const Tensor& x, std::int64_t k, const Tensor& values, const Tensor& indices);

}  // namespace topkformer::kernels
