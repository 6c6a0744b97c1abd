// CUDA fused cross-entropy beyond its parity rows (tests/kernels/
// test_backend_parity.cpp): ignored rows get exactly 0, the error for an
// out-of-range target names it as the CPU does, the same bits every run, an
// empty batch, and operand errors.
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "cuda/cuda_test_util.h"
#include "kernels/cross_entropy_reference.h"
#include "test_util.h"

namespace topkformer::testing {
namespace {

Tensor make_logits(const CrossEntropyCase& c, DType dtype, bool large) {
  return large ? random_uniform({c.rows, c.classes}, dtype, 600, -80.0, 80.0)
               : random_normal({c.rows, c.classes}, dtype, 600, 2.0);
}

class CudaCrossEntropy : public FloatingKernelTest {};

TEST_P(CudaCrossEntropy, IgnoredRowsGetZeroLossAndGradient) {
  SKIP_WITHOUT_GPU();
  for (const std::int64_t classes : {10, 20000}) {
    const Tensor logits = on_gpu(random_normal({4, classes}, dtype(), 602));
    const Tensor targets = on_gpu(tensor_of({4}, {-100, 3, -100, -100}, DType::i64));
    const Tensor losses = Tensor::empty({4}, dtype(), gpu), lse = Tensor::empty({4}, dtype(), gpu);
    gpu_kernels().cross_entropy(logits, targets, -100, 0.1, losses, lse);
    const std::vector<double> loss_values = read_values(losses.to(Device::cpu()));
    for (const std::size_t r : {0, 2, 3}) EXPECT_EQ(loss_values[r], 0.0) << "row " << r;
    EXPECT_GT(loss_values[1], 0.0);

    const Tensor dlogits = on_gpu(random_normal({4, classes}, dtype(), 603));
    gpu_kernels().cross_entropy_backward(logits, targets, lse, -100, 0.1, 2.0, dlogits);
    const std::vector<double> grad = read_values(dlogits.to(Device::cpu()));
    for (const std::int64_t r : {0, 2, 3}) {
      for (std::int64_t k = 0; k < classes; ++k) {
        ASSERT_EQ(grad[std::size_t(r * classes + k)], 0.0) << "row " << r << " class " << k;
      }
    }
  }
}

// The error names the first bad row and its target, like the CPU's, for the
// warp and the block kernels; the device stays usable afterwards.
TEST_P(CudaCrossEntropy, OutOfRangeTargetThrowsNamingIt) {
  SKIP_WITHOUT_GPU();
  for (const std::int64_t classes : {4, 50000}) {
    const Tensor logits = on_gpu(random_normal({5, classes}, dtype(), 604));
    const Tensor losses = Tensor::empty({5}, dtype(), gpu), lse = Tensor::empty({5}, dtype(), gpu);
    for (const DType target_dtype : {DType::i32, DType::i64}) {
      for (const double bad : {-1.0, double(classes), 1000000.0}) {
        const Tensor targets =
            on_gpu(tensor_of({5}, {0, -100, bad, 1, double(classes) + 5}, target_dtype));
        const std::string target = std::to_string(std::int64_t(bad));
        expect_error_containing(
            [&] { gpu_kernels().cross_entropy(logits, targets, -100, 0.0, losses, lse); },
            {"cross_entropy: target " + target + " of row 2 is outside [0, " +
                 std::to_string(classes) + ")",
             "ignore index -100"});
      }
    }
    const Tensor good = on_gpu(tensor_of({5}, {0, -100, 2, 1, 3}, DType::i64));
    EXPECT_NO_THROW(gpu_kernels().cross_entropy(logits, good, -100, 0.0, losses, lse));
  }
}

TEST_P(CudaCrossEntropy, SameBitsEveryRun) {
  SKIP_WITHOUT_GPU();
  const CrossEntropyCase c{4, 270000, 0.1, -100};
  const Tensor logits = on_gpu(make_logits(c, dtype(), true));
  const Tensor targets = on_gpu(cross_entropy_targets(c, DType::i64));
  std::vector<std::vector<double>> runs;
  for (int run = 0; run < 2; ++run) {
    const Tensor losses = Tensor::empty({c.rows}, dtype(), gpu);
    const Tensor lse = Tensor::empty({c.rows}, dtype(), gpu);
    gpu_kernels().cross_entropy(logits, targets, c.ignore_index, c.smoothing, losses, lse);
    const Tensor dlogits = Tensor::empty({c.rows, c.classes}, dtype(), gpu);
    gpu_kernels().cross_entropy_backward(logits, targets, lse, c.ignore_index, c.smoothing, 0.5,
                                         dlogits);
    std::vector<double> values = read_values(losses.to(Device::cpu()));
    for (const double v : read_values(lse.to(Device::cpu()))) values.push_back(v);
    for (const double v : read_values(dlogits.to(Device::cpu()))) values.push_back(v);
    runs.push_back(std::move(values));
  }
  EXPECT_EQ(runs[0], runs[1]);
}

TEST_P(CudaCrossEntropy, EmptyBatch) {
  SKIP_WITHOUT_GPU();
  const Tensor logits = Tensor::empty({0, 7}, dtype(), gpu);
  const Tensor targets = Tensor::empty({0}, DType::i64, gpu);
  const Tensor losses = Tensor::empty({0}, dtype(), gpu), lse = Tensor::empty({0}, dtype(), gpu);
  EXPECT_NO_THROW(gpu_kernels().cross_entropy(logits, targets, -100, 0.1, losses, lse));
  const Tensor dlogits = Tensor::empty({0, 7}, dtype(), gpu);
  EXPECT_NO_THROW(
      gpu_kernels().cross_entropy_backward(logits, targets, lse, -100, 0.1, 1.0, dlogits));
}

TEST(CudaCrossEntropyErrors, OperandsOnTheWrongDeviceOrOfTheWrongShapeThrow) {
  SKIP_WITHOUT_GPU();
  const Tensor logits = on_gpu(random_normal({3, 4}, DType::f32, 605));
  const Tensor cpu_targets = tensor_of({3}, {0, 1, 2}, DType::i64);
  const Tensor targets = on_gpu(cpu_targets);
  const Tensor losses = Tensor::empty({3}, DType::f32, gpu),
               lse = Tensor::empty({3}, DType::f32, gpu);
  expect_error_containing(
      [&] { gpu_kernels().cross_entropy(logits, cpu_targets, -100, 0.0, losses, lse); },
      {"cross_entropy: operands on cuda:0 and cpu"});
  expect_error_containing(
      [&] {
        gpu_kernels().cross_entropy(logits, targets, -100, 0.0, Tensor::empty({2}, DType::f32, gpu),
                                    lse);
      },
      {"cross_entropy: losses must be contiguous with 3 elements"});
  expect_error_containing(
      [&] {
        gpu_kernels().cross_entropy(logits, on_gpu(tensor_of({2}, {0, 1}, DType::i64)), -100, 0.0,
                                    losses, lse);
      },
      {"expected contiguous logits [N, C] and targets [N]"});
  expect_error_containing(
      [&] {
        gpu_kernels().cross_entropy_backward(logits, targets, lse, -100, 0.0, 1.0,
                                             Tensor::empty({3, 4}, DType::f32));
      },
      {"cross_entropy_backward: expected a CUDA tensor"});
}

INSTANTIATE_TEST_SUITE_P(Cuda, CudaCrossEntropy, floating_dtypes(), dtype_test_name);

}  // namespace
}  // namespace topkformer::testing
