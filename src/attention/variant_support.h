// What the attention variants share (the analogue of ops/op_support.h):
// input checks, masks and dropout addressing for one chunk of queries, top-k selection, attend().
#pragma once

#include "topkformer/attention/functional.h"
#include "topkformer/kernels/backend.h"

namespace topkformer::attention {

struct AttentionShape {
  std::int64_t batch, heads, queries, keys, head_dim, value_dim;
};

// Checks q, k, v (rank 4, matching batch/heads/dims, one dtype/device) and
// the key lengths; names `op` in errors.
AttentionShape check_attention_inputs(const Tensor& q, const Tensor& k, const Tensor& v,
                                      const AttentionContext& context, const char* op);

// The row mask of the queries [first_query, first_query + count) against keys.
kernels::RowMask chunk_mask(const AttentionShape& shape, const AttentionContext& context,
                            std::int64_t first_query);

// Keys that any query of the chunk can see: all of them unless causal.
std::int64_t visible_keys(const AttentionShape& shape, const AttentionContext& context,
                          std::int64_t first_query, std::int64_t count);

// Dropout words for the chunk's weights [B, H, count, *] within the whole
// [B, H, Lq, Lk] matrix.
kernels::DropoutAddressing chunk_dropout(const AttentionShape& shape, std::int64_t first_query,
                                         std::int64_t count);

// x itself when contiguous, else a recorded contiguous copy: the custom
// functions read their inputs as dense arrays.
Tensor contiguous_input(const Tensor& x);

// Selects the `chosen` largest entries of each row of scores [C, n] and
// writes them into the first `chosen` columns of top_scores / top_keys
// (views [C, >= chosen]; top_keys i32).
void keep_top_k(const Tensor& scores, std::int64_t chosen, const Tensor& top_scores,
                const Tensor& top_keys);

}  // namespace topkformer::attention
