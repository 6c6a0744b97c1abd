// Differentiable reductions: over the last dimension or over all elements.
#pragma once

#include "topkformer/core/tensor.h"

namespace topkformer::ops {

Tensor sum(const Tensor& x);   // all elements -> shape []
Tensor mean(const Tensor& x);  // all elements -> shape []
Tensor max(const Tensor& x);   // all elements -> shape []
Tensor sum_last(const Tensor& x, bool keepdim = false);
Tensor mean_last(const Tensor& x, bool keepdim = false);
Tensor max_last(const Tensor& x, bool keepdim = false);  // gradient flows to the first maximum

// Sums a gradient of a broadcast result back to the operand's shape.
Tensor sum_to_shape(const Tensor& x, const Shape& shape);

}  // namespace topkformer::ops
