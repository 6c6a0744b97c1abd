// Chunked attention equals vanilla at every chunk size, dividing the length
// or not (the properties all variants share are in test_variant_contract.cpp).
#include "attention_helpers.h"

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

}  // namespace
}  // namespace topkformer
