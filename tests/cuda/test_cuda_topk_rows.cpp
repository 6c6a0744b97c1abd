// The CUDA topk_rows beyond its parity rows (tests/kernels/
// test_backend_parity.cpp): no rows launch nothing; an operand on the wrong
// device and a k out of range.
#include <gtest/gtest.h>

#include "cuda/cuda_test_util.h"
#include "test_util.h"

namespace topkformer::testing {
namespace {

class CudaTopKRows : public FloatingKernelTest {};

TEST_P(CudaTopKRows, NoRowsIsANoOp) {
  SKIP_WITHOUT_GPU();
  const Tensor x = Tensor::empty({0, 5}, dtype(), gpu);
  const Tensor values = Tensor::empty({0, 3}, dtype(), gpu);
  const Tensor indices = Tensor::empty({0, 3}, DType::i32, gpu);
  run_and_synchronize([&] { gpu_kernels().topk_rows(x, 3, values, indices); });
}

TEST_P(CudaTopKRows, RejectsBadOperandsLikeCpu) {
  SKIP_WITHOUT_GPU();
  const Tensor x = on_gpu(random_normal({4, 10}, dtype(), 390));
  const Tensor values = Tensor::empty({4, 3}, dtype(), gpu);
  const Tensor indices = Tensor::empty({4, 3}, DType::i64, gpu);
  expect_error_containing(
      [&] {
        gpu_kernels().topk_rows(x, 3, Tensor::empty({4, 3}, dtype()), indices);
      },
      {"topk_rows", "cpu"});
  expect_error_containing([&] { gpu_kernels().topk_rows(x, 11, values, indices); },
                          {"topk_rows: k = 11 must be in [1, 10]"});
  expect_error_containing([&] { gpu_kernels().topk_rows(x, 0, values, indices); },
                          {"topk_rows: k = 0"});
  expect_error_containing([&] { gpu_kernels().topk_rows(x, 2, values, indices); },
                          {"topk_rows: values and indices must be [4, 2]"});
  expect_error_containing(
      [&] {
        gpu_kernels().topk_rows(x, 3, values, Tensor::empty({4, 3}, dtype(), gpu));
      },
      {"topk_rows: expected an i32 or i64 index tensor"});
  expect_error_containing([&] { gpu_kernels().topk_rows(x.transpose(0, 1), 3, values, indices); },
                          {"topk_rows: operands must be contiguous"});
}

INSTANTIATE_TEST_SUITE_P(Cuda, CudaTopKRows, floating_dtypes(), dtype_test_name);

}  // namespace
}  // namespace topkformer::testing
