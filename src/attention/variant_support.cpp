#include "variant_support.h"

#include "topkformer/ops.h"

namespace topkformer::attention {

AttentionShape check_attention_inputs(const Tensor& q, const Tensor& k, const Tensor& v,
                                      const AttentionContext& context, const char* op) {
  TKF_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, op,
            ": expected q [B, H, Lq, d], k [B, H, Lk, d], v [B, H, Lk, dv], got ",
            shape_str(q.shape()), ", ", shape_str(k.shape()), ", ", shape_str(v.shape()));
  TKF_CHECK(k.size(0) == q.size(0) && v.size(0) == q.size(0) && k.size(1) == q.size(1) &&
                v.size(1) == q.size(1) && k.size(3) == q.size(3) && v.size(2) == k.size(2),
            op, ": shape mismatch, q ", shape_str(q.shape()), ", k ", shape_str(k.shape()), ", v ",
            shape_str(v.shape()));
  check_same_dtype(q, k, op);
  check_same_dtype(q, v, op);
  if (context.key_lengths.defined()) {
    TKF_CHECK(context.key_lengths.numel() == q.size(0), op, ": key_lengths has ",
              context.key_lengths.numel(), " entries for a batch of ", q.size(0));
  }
  return {q.size(0), q.size(1), q.size(2), k.size(2), q.size(3), v.size(3)};
}

kernels::RowMask chunk_mask(const AttentionShape& shape, const AttentionContext& context,
                            std::int64_t first_query) {
  kernels::RowMask mask;
  mask.causal = context.causal;
  mask.causal_offset = first_query + shape.keys - shape.queries;
  mask.key_lengths = context.key_lengths;
  return mask;
}

std::int64_t visible_keys(const AttentionShape& shape, const AttentionContext& context,
                          std::int64_t first_query, std::int64_t count) {
  if (!context.causal) return shape.keys;
  const std::int64_t last_visible = first_query + count - 1 + shape.keys - shape.queries;
  return std::clamp<std::int64_t>(last_visible + 1, 0, shape.keys);
}

kernels::DropoutAddressing chunk_dropout(const AttentionShape& shape, std::int64_t first_query,
                                         std::int64_t count) {
  kernels::DropoutAddressing addressing;
  addressing.rows_per_block = count;
  addressing.block_stride = shape.queries;
  addressing.first_row = first_query;
  addressing.row_words = shape.keys;
  return addressing;
}

Tensor contiguous_input(const Tensor& x) {
  return x.is_contiguous() ? x : ops::contiguous(x);
}

void keep_top_k(const Tensor& scores, std::int64_t chosen, const Tensor& top_scores,
                const Tensor& top_keys) {
  const std::int64_t rows = scores.size(0);
  const Tensor values = Tensor::empty({rows, chosen}, scores.dtype(), scores.device());
  const Tensor indices = Tensor::empty({rows, chosen}, DType::i32, scores.device());
  kernels::backend(scores.device()).topk_rows(scores, chosen, values, indices);
  top_scores.narrow(1, 0, chosen).copy_(values);
  top_keys.narrow(1, 0, chosen).copy_(indices);
}

Tensor attend(const AttentionConfig& config, const Tensor& q, const Tensor& k, const Tensor& v,
              const AttentionContext& context, const Tensor& projection) {
  switch (config.kind) {
    case AttentionKind::vanilla:
      return vanilla_attention(q, k, v, context);
    case AttentionKind::chunked:
      return chunked_attention(q, k, v, context, config.chunk_size);
    case AttentionKind::topk:
      return topk_attention(q, k, v, context, config.k, config.chunk_size);
    case AttentionKind::performer:
      return performer_attention(q, k, v, context, projection);
    case AttentionKind::count:
      break;
  }
  throw Error("attend: count is not an attention kind");
}

}  // namespace topkformer::attention
