// The CUDA fused optimizer updates beyond their parity cases (AdamW and SGD
// steps against the CPU: tests/kernels/test_backend_parity.cpp): empty
// parameters and operand errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "cuda/cuda_test_util.h"
#include "test_util.h"

namespace topkformer::testing {
namespace {

class CudaOptimizerKernel : public FloatingKernelTest {};

TEST_P(CudaOptimizerKernel, EmptyParametersAreANoOp) {
  SKIP_WITHOUT_GPU();
  run_and_synchronize([&] {
    const Tensor empty = Tensor::empty({0}, dtype(), gpu);
    gpu_kernels().adamw_update(empty, empty, empty, empty, kernels::AdamWStep{});
    gpu_kernels().sgd_update(empty, empty, empty, kernels::SgdStep{});
  });
}

INSTANTIATE_TEST_SUITE_P(Cuda, CudaOptimizerKernel, floating_dtypes(), dtype_test_name);

TEST(CudaOptimizerErrors, OperandsOnTheHostStridedOrMismatched) {
  SKIP_WITHOUT_GPU();
  const Tensor p = Tensor::zeros({4, 3}, DType::f32, gpu);
  const Tensor g = Tensor::zeros({4, 3}, DType::f32, gpu);
  const Tensor m = Tensor::zeros({4, 3}, DType::f32, gpu);
  const Tensor v = Tensor::zeros({4, 3}, DType::f32, gpu);
  expect_error_containing(
      [&] {
        gpu_kernels().adamw_update(p, Tensor::zeros({4, 3}), m, v, kernels::AdamWStep{});
      },
      {"adamw_update", "cuda:0", "cpu"});
  expect_error_containing(
      [&] {
        const Tensor strided = Tensor::zeros({3, 4}, DType::f32, gpu).transpose(0, 1);
        gpu_kernels().adamw_update(p, g, strided, v, kernels::AdamWStep{});
      },
      {"adamw_update", "contiguous"});
  expect_error_containing(
      [&] {
        gpu_kernels().sgd_update(p, g, Tensor::zeros({4, 3}, DType::f64, gpu), kernels::SgdStep{});
      },
      {"sgd_update"});
  expect_error_containing(
      [&] {
        gpu_kernels().sgd_update(p, g, Tensor::zeros({12}, DType::f32, gpu), kernels::SgdStep{});
      },
      {"sgd_update", "[4, 3]", "[12]"});
}

}  // namespace
}  // namespace topkformer::testing
