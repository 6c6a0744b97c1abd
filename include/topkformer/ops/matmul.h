// Differentiable matrix products.
#pragma once

#include "topkformer/core/tensor.h"

namespace topkformer::ops {

// op(a) @ op(b) over the last two dimensions, with NumPy broadcasting of the
// leading (batch) dimensions; op transposes when asked. Transposed and sliced
// views go to BLAS as they are (no copies). A 2-D right operand folds the
// batch into one large product.
Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a = false, bool transpose_b = false);

// x @ weight^T + bias, with weight [out, in] and bias [out] (or undefined).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace topkformer::ops
