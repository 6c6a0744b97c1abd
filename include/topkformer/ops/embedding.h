// Differentiable embedding lookup.
#pragma once

#include "topkformer/core/tensor.h"

namespace topkformer::ops {

// weight [V, D], ids (i32/i64, any shape) -> [ids..., D]. The gradient is a
// scatter-add into a [V, D] tensor. An id outside [0, V) throws.
Tensor embedding(const Tensor& weight, const Tensor& ids);

}  // namespace topkformer::ops
