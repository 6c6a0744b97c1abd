// CudaBackend::topk_scores beyond its parity rows (tests/kernels/
// test_backend_parity.cpp): the same bits on repeated calls, and an operand
// on another device.
#include <string>
#include <vector>

#include "cuda/cuda_test_util.h"
#include "kernels/topk_scores_reference.h"
#include "test_util.h"

namespace topkformer::testing {
namespace {

// Rows of 6 groups (2 batch items) with causal and padding masks.
const TopKScoresCase long_causal_lengths{"long_causal_lengths", 6,         1000, 1000, 64, true, 0,
                                         {1000, 613},           DType::i64};

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

class CudaTopKScores : public FloatingKernelTest {};

TEST_P(CudaTopKScores, RepeatedCallsGiveTheSameBits) {
  SKIP_WITHOUT_GPU();
  const TopKScoresCase& c = long_causal_lengths;
  const TopKScoresInputs in = topk_scores_inputs(c, dtype(), ScoreInputs::normal, 802);
  const TopKScoresResult first = run_on_gpu(in, 128, gpu_mask(c));
  const TopKScoresResult second = run_on_gpu(in, 128, gpu_mask(c));
  EXPECT_EQ(first.values, second.values);
  EXPECT_EQ(first.indices, second.indices);
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
