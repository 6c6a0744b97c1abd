// Top-k attention with k < keys against a dense reference that keeps each
// row's k largest scores (the shared properties: test_variant_contract.cpp).
#include "attention_helpers.h"
#include "topkformer/ops.h"

namespace topkformer {
namespace {

using attention::AttentionContext;
using namespace testing;

AttentionContext masked_context(bool causal) {
  return testing::masked_context(causal, 11, 6, 0.4);
}

// Dense reference: the scores of the kept entries (the k largest valid ones
// of each row, ties to the lower key) get 0 added, all others -inf.
Tensor dense_top_k_reference(const Tensor& q, const Tensor& k, const Tensor& v,
                             const AttentionContext& context, std::int64_t top_k) {
  const std::int64_t batch = q.size(0), heads = q.size(1), queries = q.size(2), keys = k.size(2);
  const Tensor scores = ops::scale(ops::matmul(q, k, false, true), context.scale);
  Tensor masked = scores.detach().contiguous().clone();
  kernels::RowMask mask{context.causal, keys - queries, context.key_lengths};
  kernels::backend(Device::cpu()).fill_masked(masked, mask, -INFINITY);
  const auto [values, kept] = ops::topk(masked, std::min(top_k, keys));
  Tensor bias = Tensor::full(scores.shape(), -INFINITY, scores.dtype());
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t h = 0; h < heads; ++h)
      for (std::int64_t i = 0; i < queries; ++i)
        for (std::int64_t j = 0; j < kept.size(3); ++j) {
          if (std::isinf(values.value_at({b, h, i, j}))) continue;  // masked keys stay out
          const auto key = static_cast<std::int64_t>(kept.value_at({b, h, i, j}));
          if (scores.dtype() == DType::f64) {
            bias.at<double>({b, h, i, key}) = 0.0;
          } else {
            bias.at<float>({b, h, i, key}) = 0.0f;
          }
        }
  return ops::matmul(ops::softmax(ops::add(scores, bias)), v);
}

AttentionFunction topk_of(const AttentionContext& context, std::int64_t top_k, std::int64_t chunk) {
  return [=](const Tensor& q, const Tensor& k, const Tensor& v) {
    return attention::topk_attention(q, k, v, context, top_k, chunk);
  };
}

TEST(TopKAttention, WithSmallKEqualsTheDenseTopKReference) {
  for (bool causal : {false, true}) {
    const AttentionContext context = masked_context(causal);
    const AttentionInputs in = random_attention_inputs(2, 3, 13, 13, 4, DType::f64, 12);
    const OutputAndGrads expected =
        run_with_grads([&](const Tensor& q, const Tensor& k,
                           const Tensor& v) { return dense_top_k_reference(q, k, v, context, 3); },
                       in);
    for (std::int64_t chunk : {1, 4, 13}) {
      SCOPED_TRACE("chunk " + std::to_string(chunk) + (causal ? " causal" : ""));
      expect_same_results(run_with_grads(topk_of(context, 3, chunk), in), expected, 1e-12);
    }
  }
}

TEST(TopKAttention, RejectsBadArguments) {
  const AttentionInputs in = random_attention_inputs(1, 1, 4, 4, 2, DType::f32, 16);
  expect_error_containing([&] { attention::topk_attention(in.q, in.k, in.v, {}, 0, 2); },
                          {"topk_attention", "k must be >= 1"});
  expect_error_containing(
      [&] { attention::topk_attention(in.q, in.k.narrow(3, 0, 1), in.v, {}, 2, 2); },
      {"topk_attention", "[1, 1, 4, 2]", "[1, 1, 4, 1]"});
}

}  // namespace
}  // namespace topkformer
