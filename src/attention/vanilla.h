// Dense (vanilla) attention of a chunk of queries through ordinary ops: the
// building block of the vanilla and chunked variants.
#pragma once

#include "variant_support.h"

namespace topkformer::attention {

// Attention of q rows [first_query, first_query + q.size(2)) of the full
// query set described by `shape`, against the keys/values given (a prefix of
// all keys when the rest are causally invisible to the chunk).
Tensor dense_attention_chunk(const Tensor& q, const Tensor& k, const Tensor& v,
                             const AttentionContext& context, const AttentionShape& shape,
                             std::int64_t first_query);

}  // namespace topkformer::attention
