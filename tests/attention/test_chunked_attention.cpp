// Chunked attention (query chunking + input checkpointing) equals vanilla.
#include "attention_helpers.h"
#include "topkformer/autograd/gradcheck.h"

namespace topkformer {
namespace {

using attention::AttentionContext;
using namespace testing;

AttentionContext masked_context(bool causal) {
  return testing::masked_context(causal, 13, 9, 0.35);
}

TEST(ChunkedAttention, EqualsVanillaForEveryChunkSize) {
  constexpr std::int64_t length = 16;
  for (bool causal : {false, true}) {
    const AttentionContext context = masked_context(causal);
    const AttentionInputs in = random_attention_inputs(2, 3, length, length, 8, DType::f32, 5);
    const OutputAndGrads expected = run_with_grads(
        [&](const Tensor& q, const Tensor& k, const Tensor& v) {
          return attention::vanilla_attention(q, k, v, context);
        },
        in);
    // 1, 7 (does not divide 16), L/4, L, and more than L.
    for (std::int64_t chunk : std::vector<std::int64_t>{1, 7, length / 4, length, 3 * length}) {
      SCOPED_TRACE("chunk " + std::to_string(chunk) + (causal ? " causal" : ""));
      const OutputAndGrads got = run_with_grads(
          [&](const Tensor& q, const Tensor& k, const Tensor& v) {
            return attention::chunked_attention(q, k, v, context, chunk);
          },
          in);
      expect_same_results(got, expected, 1e-5);
    }
  }
}

TEST(ChunkedAttention, DropoutReplaysTheVanillaMaskInEveryChunk) {
  AttentionContext context = masked_context(true);
  context.dropout = 0.3;
  context.dropout_state = {77, 1000};
  const AttentionInputs in = random_attention_inputs(2, 2, 12, 12, 4, DType::f64, 6);
  const OutputAndGrads expected = run_with_grads(
      [&](const Tensor& q, const Tensor& k, const Tensor& v) {
        return attention::vanilla_attention(q, k, v, context);
      },
      in);
  const OutputAndGrads got = run_with_grads(
      [&](const Tensor& q, const Tensor& k, const Tensor& v) {
        return attention::chunked_attention(q, k, v, context, 5);
      },
      in);
  expect_same_results(got, expected, 1e-12);
}

TEST(ChunkedAttention, GradientCheck) {
  for (bool causal : {false, true}) {
    AttentionContext context = masked_context(causal);
    context.dropout = 0.2;
    context.dropout_state = {3, 0};
    const AttentionInputs in = random_attention_inputs(2, 2, 6, 6, 3, DType::f64, 7);
    const auto report = autograd::gradcheck(
        [&](const std::vector<Tensor>& x) {
          return attention::chunked_attention(x[0], x[1], x[2], context, 4);
        },
        {in.q, in.k, in.v});
    EXPECT_TRUE(report.passed) << report.str();
  }
}

TEST(ChunkedAttention, CrossAttentionWithMoreKeysThanQueries) {
  const AttentionContext context = masked_context(true);
  const AttentionInputs in = random_attention_inputs(2, 1, 5, 13, 4, DType::f64, 8);
  const auto vanilla = run_with_grads(
      [&](const Tensor& q, const Tensor& k, const Tensor& v) {
        return attention::vanilla_attention(q, k, v, context);
      },
      in);
  const auto chunked = run_with_grads(
      [&](const Tensor& q, const Tensor& k, const Tensor& v) {
        return attention::chunked_attention(q, k, v, context, 2);
      },
      in);
  expect_same_results(chunked, vanilla, 1e-12);
}

}  // namespace
}  // namespace topkformer
