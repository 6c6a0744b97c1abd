// Differentiable elementwise ops. Binary ops broadcast (NumPy rules); a
// dtype or shape mismatch throws an Error naming the op and both operands.
#pragma once

#include "topkformer/core/tensor.h"

namespace topkformer::ops {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);

Tensor scale(const Tensor& x, double alpha);       // alpha * x
Tensor add_scalar(const Tensor& x, double value);  // x + value
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor relu(const Tensor& x);

enum class GeluApproximation { tanh, erf };
Tensor gelu(const Tensor& x, GeluApproximation approximation = GeluApproximation::tanh);

}  // namespace topkformer::ops
