// Differentiable ops driven by integer indices.
#pragma once

#include <utility>

#include "topkformer/core/tensor.h"

namespace topkformer::ops {

// The k largest entries of each row of x[..., n]: values [..., k] (descending,
// differentiable) and indices [..., k] (i64). Requires 1 <= k <= n.
std::pair<Tensor, Tensor> topk(const Tensor& x, std::int64_t k);

// rows[g, n] = src[g, index[g, n]] for src [G, M, D], index [G, N] -> [G, N, D].
Tensor gather_rows(const Tensor& src, const Tensor& index);
// dst + scatter: result[g, index[g, n]] += rows[g, n]; differentiable in dst and rows.
Tensor scatter_add_rows(const Tensor& dst, const Tensor& index, const Tensor& rows);

}  // namespace topkformer::ops
