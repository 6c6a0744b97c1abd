// Differentiable layer normalisation over the last dimension.
#pragma once

#include "topkformer/core/tensor.h"

namespace topkformer::ops {

Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps = 1e-5);

}  // namespace topkformer::ops
