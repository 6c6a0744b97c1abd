// The device-neutral part of the cross_entropy family (backend.h): the operand
// checks, shared by every device.
#pragma once

#include <cstdint>

#include "topkformer/core/tensor.h"

namespace topkformer::kernels {

// Checks contiguous logits [N, C] and targets [N]; `op` names the kernel.
void check_cross_entropy_inputs(const Tensor& logits, const Tensor& targets, const char* op);

// Throws, naming the row, unless `target` is ignore_index or in [0, classes).
void check_cross_entropy_target(std::int64_t target, std::int64_t row, std::int64_t classes,
                                std::int64_t ignore_index);

}  // namespace topkformer::kernels
