// Every differentiable op, one section per family (src/ops/<family>.cpp);
// each op validates its inputs (errors name the op and shapes) and records its backward.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "topkformer/core/rng.h"
#include "topkformer/core/tensor.h"
#include "topkformer/kernels/backend.h"

namespace topkformer::ops {

// ---- elementwise (src/ops/elementwise.cpp) ----
// Differentiable elementwise ops. Binary ops broadcast (NumPy rules); a
// dtype or shape mismatch throws an Error naming the op and both operands.

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

// ---- reduce (src/ops/reduce.cpp) ----
// Differentiable reductions: over the last dimension or over all elements.

Tensor sum(const Tensor& x);   // all elements -> shape []
Tensor mean(const Tensor& x);  // all elements -> shape []
Tensor max(const Tensor& x);   // all elements -> shape []
Tensor sum_last(const Tensor& x, bool keepdim = false);
Tensor mean_last(const Tensor& x, bool keepdim = false);
Tensor max_last(const Tensor& x, bool keepdim = false);  // gradient flows to the first maximum

// Sums a gradient of a broadcast result back to the operand's shape.
Tensor sum_to_shape(const Tensor& x, const Shape& shape);

// ---- matmul (src/ops/matmul.cpp) ----
// Differentiable matrix products.

// op(a) @ op(b) over the last two dimensions, with NumPy broadcasting of the
// leading (batch) dimensions; op transposes when asked. Transposed and sliced
// views go to BLAS as they are (no copies). A 2-D right operand folds the
// batch into one large product.
Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a = false, bool transpose_b = false);

// x @ weight^T + bias, with weight [out, in] and bias [out] (or undefined).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// ---- shape (src/ops/shape.cpp) ----
// Differentiable shape ops. Views stay views (no copies) where the layout allows.

Tensor reshape(const Tensor& x, const Shape& shape);
Tensor transpose(const Tensor& x, int dim0, int dim1);
Tensor permute(const Tensor& x, const std::vector<int>& dims);
Tensor slice(const Tensor& x, int dim, std::int64_t start, std::int64_t end, std::int64_t step = 1);
Tensor narrow(const Tensor& x, int dim, std::int64_t start, std::int64_t length);
Tensor select(const Tensor& x, int dim, std::int64_t index);
Tensor unsqueeze(const Tensor& x, int dim);
Tensor squeeze(const Tensor& x, int dim);
Tensor expand(const Tensor& x, const Shape& shape);
Tensor contiguous(const Tensor& x);
Tensor concat(const std::vector<Tensor>& tensors, int dim);

// ---- softmax (src/ops/softmax.cpp) ----
// Differentiable softmax and log-softmax over the last dimension, with
// optional causal and key-padding masks (see kernels::RowMask).

using kernels::RowMask;

Tensor softmax(const Tensor& x, const RowMask& mask = {});
Tensor log_softmax(const Tensor& x, const RowMask& mask = {});

// ---- layer_norm (src/ops/layer_norm.cpp) ----
// Differentiable layer normalisation over the last dimension.

Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps = 1e-5);

// ---- embedding (src/ops/embedding.cpp) ----
// Differentiable embedding lookup.

// weight [V, D], ids (i32/i64, any shape) -> [ids..., D]. The gradient is a
// scatter-add into a [V, D] tensor. An id outside [0, V) throws.
Tensor embedding(const Tensor& weight, const Tensor& ids);

// ---- loss (src/ops/loss.cpp) ----
// Differentiable losses.

// Mean cross-entropy of logits [..., C] against integer targets [...] over
// the targets that are not ignore_index (0 when all are ignored), with label
// smoothing: the target distribution is (1 - s) onehot + s / C.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, std::int64_t ignore_index = -100,
                     double label_smoothing = 0.0);

// ---- dropout (src/ops/dropout.cpp) ----
// Differentiable dropout whose mask is regenerated, not stored.

// Zeroes each element with probability p and scales the rest by 1 / (1 - p).
// The mask comes from the Philox stream at `state` (element e uses word
// state.offset + e); the backward pass regenerates it, so no mask is saved.
Tensor dropout(const Tensor& x, double p, PhiloxState state,
               const kernels::DropoutAddressing& addressing = {});
// Draws the state from `generator` (numel words). Identity when p == 0.
Tensor dropout(const Tensor& x, double p, Generator& generator = default_generator());

// ---- index (src/ops/index.cpp) ----
// Differentiable ops driven by integer indices.

// The k largest entries of each row of x[..., n]: values [..., k] (descending,
// differentiable) and indices [..., k] (i64). Requires 1 <= k <= n.
std::pair<Tensor, Tensor> topk(const Tensor& x, std::int64_t k);

// rows[g, n] = src[g, index[g, n]] for src [G, M, D], index [G, N] -> [G, N, D].
Tensor gather_rows(const Tensor& src, const Tensor& index);
// dst + scatter: result[g, index[g, n]] += rows[g, n]; differentiable in dst and rows.
Tensor scatter_add_rows(const Tensor& dst, const Tensor& index, const Tensor& rows);

}  // namespace topkformer::ops
