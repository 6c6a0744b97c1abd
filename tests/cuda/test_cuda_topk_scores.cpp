// CudaBackend::topk_scores (the fused kernel, or the dense path where its
// shared memory would not fit) against the CPU's on the same inputs. Scores
// are summed in a different order than OpenBLAS does, so near-ties may swap:
// both results are checked against exact scores and against each other up
// to such swaps (topk_scores_reference.h), and bit for bit where the inputs
// make every score exact. Sizes leave partial query tiles and key blocks
// (Lq = 77, Lk = 300; Lq = Lk = 1000), with causal masks (offset 0 and
// Lk - Lq), padding (i32/i64 lengths, 2 batch items of 3 groups), k = 1, 32,
// 128, Lk and more than short rows see, head dims 16, 64 and 100, and sizes
// whose shared memory no GPU has (head dim 512, k = 1024) for the dense path.
#include <string>
#include <vector>

#include "cuda/cuda_test_util.h"
#include "kernels/topk_scores_reference.h"
#include "test_util.h"

namespace topkformer::testing {
namespace {

struct GpuCase {
  TopKScoresCase c;
  std::vector<std::int64_t> ks;
};

const GpuCase cases[] = {
    {{"partial_tiles_d16", 2, 77, 300, 16}, {1, 32, 128}},
    {{"partial_tiles_d64", 2, 77, 300, 64}, {1, 32, 128, 300}},
    {{"partial_tiles_d100", 2, 77, 300, 100}, {1, 32, 128}},
    // Every row sees at most 77 keys: k = 128 leaves -inf slots everywhere.
    {{"causal", 2, 77, 300, 64, true, 0}, {1, 32, 128}},
    {{"causal_offset_kv_cache", 2, 77, 300, 64, true, 223}, {1, 32, 128}},
    {{"lengths_i32", 6, 77, 300, 64, false, 0, {300, 45}, DType::i32}, {1, 32, 128}},
    {{"causal_and_lengths_i64", 6, 77, 300, 16, true, 223, {0, 170}, DType::i64}, {1, 32, 128}},
    {{"long", 2, 1000, 1000, 64}, {32, 128}},
    {{"long_causal_lengths", 6, 1000, 1000, 64, true, 0, {1000, 613}, DType::i64}, {128}},
    // Too large for the fused kernel's shared memory on any GPU: the dense path.
    {{"dense_path_d512", 2, 77, 300, 512, true, 223}, {1, 32}},
    {{"dense_path_k1024", 2, 40, 1100, 16, true, 1060, {1100, 1070}, DType::i32}, {1024}},
};

// The mask with its key lengths on the GPU, where top-k attention keeps them.
kernels::RowMask gpu_mask(const TopKScoresCase& c) {
  kernels::RowMask mask = topk_scores_mask(c);
  if (mask.key_lengths.defined()) mask.key_lengths = on_gpu(mask.key_lengths);
  return mask;
}

TopKScoresResult run_on_gpu(const TopKScoresInputs& in, std::int64_t k,
                            const kernels::RowMask& mask) {
  return run_topk_scores(gpu_kernels(), on_gpu(in.q), on_gpu(in.keys), in.scale, mask, k, 16);
}

TopKScoresResult run_on_cpu(const TopKScoresCase& c, const TopKScoresInputs& in, std::int64_t k) {
  return run_topk_scores(cpu_kernels(), in.q, in.keys, in.scale, topk_scores_mask(c), k, 64);
}

std::string describe(const TopKScoresCase& c, std::int64_t k) {
  return c.name + " k " + std::to_string(k);
}

// GPU and CPU on the same inputs: each valid, the two the same up to near-ties.
void expect_matches_cpu_up_to_ties(const TopKScoresCase& c, DType dtype, ScoreInputs kind,
                                   std::int64_t k, const std::string& what) {
  const TopKScoresInputs in = topk_scores_inputs(c, dtype, kind, 800);
  const TopKScoresChecker check(c, in, k);
  const TopKScoresResult got = run_on_gpu(in, k, gpu_mask(c));
  const TopKScoresResult want = run_on_cpu(c, in, k);
  check.expect_valid(got, what + " (GPU)");
  check.expect_valid(want, what + " (CPU)");
  check.expect_same(got, want, what);
}

class CudaTopKScores : public FloatingKernelTest {};

TEST_P(CudaTopKScores, MatchesCpuUpToNearTies) {
  SKIP_WITHOUT_GPU();
  for (const GpuCase& g : cases) {
    for (const std::int64_t k : g.ks) {
      expect_matches_cpu_up_to_ties(g.c, dtype(), ScoreInputs::normal, k, describe(g.c, k));
    }
  }
}

// Scores that rise with the key: every key beats the running k-th best, so
// candidate buffers fill every other key block and merge over and over.
TEST_P(CudaTopKScores, AscendingScoresMergeOften) {
  SKIP_WITHOUT_GPU();
  for (const GpuCase& g : cases) {
    if (g.c.keys < 1000) continue;
    for (const std::int64_t k : g.ks) {
      expect_matches_cpu_up_to_ties(g.c, dtype(), ScoreInputs::ascending, k,
                                    describe(g.c, k) + " ascending");
    }
  }
}

// Small integers: every score exact, full of ties (which go to the lower key).
TEST_P(CudaTopKScores, ExactScoresMatchCpuBitForBit) {
  SKIP_WITHOUT_GPU();
  for (const GpuCase& g : cases) {
    const TopKScoresInputs in = topk_scores_inputs(g.c, dtype(), ScoreInputs::small_integers, 801);
    for (const std::int64_t k : g.ks) {
      const TopKScoresChecker check(g.c, in, k);
      const TopKScoresResult got = run_on_gpu(in, k, gpu_mask(g.c));
      check.expect_valid(got, describe(g.c, k) + " integers");
      check.expect_identical(got, run_on_cpu(g.c, in, k), describe(g.c, k) + " integers");
    }
  }
}

TEST_P(CudaTopKScores, RepeatedCallsGiveTheSameBits) {
  SKIP_WITHOUT_GPU();
  const TopKScoresCase& c = cases[8].c;  // long_causal_lengths
  const TopKScoresInputs in = topk_scores_inputs(c, dtype(), ScoreInputs::normal, 802);
  const TopKScoresResult first = run_on_gpu(in, 128, gpu_mask(c));
  const TopKScoresResult second = run_on_gpu(in, 128, gpu_mask(c));
  EXPECT_EQ(first.values, second.values);
  EXPECT_EQ(first.indices, second.indices);
}

// Key lengths may also come from the host (as the CPU reads them).
TEST_P(CudaTopKScores, KeyLengthsOnTheHost) {
  SKIP_WITHOUT_GPU();
  const TopKScoresCase& c = cases[6].c;  // causal_and_lengths_i64
  const TopKScoresInputs in = topk_scores_inputs(c, dtype(), ScoreInputs::small_integers, 803);
  const TopKScoresChecker check(c, in, 32);
  check.expect_identical(run_on_gpu(in, 32, topk_scores_mask(c)), run_on_cpu(c, in, 32),
                         "lengths on the host");
}

INSTANTIATE_TEST_SUITE_P(Cuda, CudaTopKScores, floating_dtypes(), dtype_test_name);

TEST(CudaTopKScoresErrors, OperandOnAnotherDevice) {
  SKIP_WITHOUT_GPU();
  const Tensor q = on_gpu(Tensor::zeros({2, 5, 4}));
  const Tensor values = Tensor::empty({2, 5, 3}, DType::f32, gpu);
  const Tensor indices = Tensor::empty({2, 5, 3}, DType::i32, gpu);
  expect_error_containing(
      [&] {
        gpu_kernels().topk_scores(q, Tensor::zeros({2, 6, 4}), 1.0, {}, 3, 4, values, indices);
      },
      {"topk_scores", "cuda:0"});
}

}  // namespace
}  // namespace topkformer::testing
