// CpuBackend::topk_scores (dense blocks of chunk_rows queries) against the
// dense reference over whole rows (gemm + fill_masked + topk_rows) and the
// exact scores (topk_scores_reference.h): chunks of 1, 3, 64 and >= Lq rows,
// causal masks with offset 0 and Lk - Lq, padding lengths (i32/i64; 2 batch
// items of 3 groups, one item seeing no key), k from 1 to Lk with rows that
// see fewer than k keys, f32 and f64.
#include <string>
#include <vector>

#include "kernels/topk_scores_reference.h"
#include "test_util.h"

namespace topkformer::testing {
namespace {

const TopKScoresCase cases[] = {
    {"plain", 2, 37, 53, 16},
    {"causal", 2, 45, 45, 16, true, 0},
    {"causal_more_keys", 2, 30, 70, 16, true, 0},
    {"causal_offset_kv_cache", 2, 30, 70, 16, true, 40},  // offset Lk - Lq
    {"causal_negative_offset", 2, 30, 30, 8, true, -3},   // queries 0 to 2 see no key
    {"lengths_i32", 6, 37, 53, 16, false, 0, {53, 9}, DType::i32},
    {"lengths_i64_past_keys", 6, 37, 53, 16, false, 0, {80, 12}, DType::i64},
    {"causal_and_lengths", 6, 40, 40, 16, true, 0, {0, 31}, DType::i64},  // item 0 sees nothing
    {"offset_and_lengths_i32", 6, 30, 70, 16, true, 40, {70, 50}, DType::i32},
};

// k = 20 exceeds what the short rows see (9 and 12 keys, early causal queries).
std::vector<std::int64_t> ks(const TopKScoresCase& c) {
  return {1, 20, c.keys};
}

std::vector<std::int64_t> chunk_sizes(const TopKScoresCase& c) {
  return {1, 3, 64, c.queries, c.queries + 50};
}

std::string describe(const TopKScoresCase& c, std::int64_t k, std::int64_t chunk_rows) {
  return c.name + " k " + std::to_string(k) + " chunk_rows " + std::to_string(chunk_rows);
}

class TopKScoresKernel : public FloatingKernelTest {};

TEST_P(TopKScoresKernel, ChunksMatchTheDenseReference) {
  for (const ScoreInputs kind : {ScoreInputs::normal, ScoreInputs::ascending}) {
    for (const TopKScoresCase& c : cases) {
      const TopKScoresInputs in = topk_scores_inputs(c, dtype(), kind, 700);
      for (const std::int64_t k : ks(c)) {
        const TopKScoresChecker check(c, in, k);
        const TopKScoresResult want = dense_topk_scores(c, in, k);
        check.expect_valid(want, describe(c, k, 0) + " (dense reference)");
        for (const std::int64_t chunk_rows : chunk_sizes(c)) {
          const TopKScoresResult got = run_topk_scores(cpu_kernels(), in.q, in.keys, in.scale,
                                                       topk_scores_mask(c), k, chunk_rows);
          check.expect_valid(got, describe(c, k, chunk_rows));
          check.expect_same(got, want, describe(c, k, chunk_rows));
        }
      }
    }
  }
}

// Small integers: exact scores and many ties, which go to the lower key.
TEST_P(TopKScoresKernel, ExactScoresMatchBitForBit) {
  for (const TopKScoresCase& c : cases) {
    const TopKScoresInputs in = topk_scores_inputs(c, dtype(), ScoreInputs::small_integers, 701);
    for (const std::int64_t k : ks(c)) {
      const TopKScoresChecker check(c, in, k);
      const TopKScoresResult want = dense_topk_scores(c, in, k);
      for (const std::int64_t chunk_rows : chunk_sizes(c)) {
        const TopKScoresResult got = run_topk_scores(cpu_kernels(), in.q, in.keys, in.scale,
                                                     topk_scores_mask(c), k, chunk_rows);
        check.expect_valid(got, describe(c, k, chunk_rows));
        check.expect_identical(got, want, describe(c, k, chunk_rows));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Floating, TopKScoresKernel, floating_dtypes(), dtype_test_name);

TEST(TopKScoresKernelErrors, OperandsAreChecked) {
  const Tensor q = Tensor::zeros({2, 5, 4});
  const Tensor keys = Tensor::zeros({2, 6, 4});
  const auto call = [&](std::int64_t k, std::int64_t chunk_rows, DType index_dtype,
                        const kernels::RowMask& mask) {
    const Tensor values = Tensor::empty({2, 5, k});
    const Tensor indices = Tensor::empty({2, 5, k}, index_dtype);
    cpu_kernels().topk_scores(q, keys, 1.0, mask, k, chunk_rows, values, indices);
  };
  expect_error_containing([&] { call(7, 4, DType::i32, {}); }, {"topk_scores", "k = 7", "[1, 6]"});
  expect_error_containing([&] { call(2, 0, DType::i32, {}); }, {"topk_scores", "chunk_rows"});
  expect_error_containing([&] { call(2, 4, DType::i64, {}); }, {"topk_scores", "i32"});
  expect_error_containing(
      [&] {
        call(2, 4, DType::i32, row_mask_of(false, 0, {5, 5, 5}, DType::i64));
      },
      {"topk_scores", "2 groups", "3 batch items"});
  expect_error_containing(
      [&] {
        const Tensor values = Tensor::empty({2, 5, 2});
        const Tensor indices = Tensor::empty({2, 5, 2}, DType::i32);
        cpu_kernels().topk_scores(q, Tensor::zeros({2, 6, 3}), 1.0, {}, 2, 4, values, indices);
      },
      {"topk_scores", "[2, 6, 3]"});
}

}  // namespace
}  // namespace topkformer::testing
