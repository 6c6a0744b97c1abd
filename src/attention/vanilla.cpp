#include "vanilla.h"
#include "topkformer/ops.h"

namespace topkformer::attention {

Tensor dense_attention_chunk(const Tensor& q, const Tensor& k, const Tensor& v,
                             const AttentionContext& context, const AttentionShape& shape,
                             std::int64_t first_query) {
  const Tensor scores = ops::scale(ops::matmul(q, k, false, true), context.scale);
  Tensor weights = ops::softmax(scores, chunk_mask(shape, context, first_query));
  if (context.dropout > 0.0) {
    weights = ops::dropout(weights, context.dropout, context.dropout_state,
                           chunk_dropout(shape, first_query, q.size(2)));
  }
  return ops::matmul(weights, v);
}

Tensor vanilla_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                         const AttentionContext& context) {
  const AttentionShape shape = check_attention_inputs(q, k, v, context, "vanilla_attention");
  return dense_attention_chunk(q, k, v, context, shape, 0);
}

}  // namespace topkformer::attention
