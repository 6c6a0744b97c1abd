// cuBLAS gemm beyond its parity rows (tests/kernels/test_backend_parity.cpp):
// k = 0 scales c (beta = 0 ignores NaN in c, as BLAS does), operands on two
// devices, and the matmul precision names.
#include <cmath>
#include <string>

#include "cuda/cuda_test_util.h"
#include "kernels/gemm_reference.h"
#include "test_util.h"
#include "topkformer/core/runtime.h"

namespace topkformer::testing {
namespace {

TEST(CudaGemm, EmptyInnerDimensionScalesC) {
  SKIP_WITHOUT_GPU();
  const Tensor a = Tensor::empty({4, 0}, DType::f32, gpu);
  const Tensor b = Tensor::empty({0, 3}, DType::f32, gpu);
  const Tensor c = Tensor::full({4, 3}, 2.0, DType::f32, gpu);
  gpu_kernels().gemm(a, false, b, false, c, 1.0, 1.5);
  expect_matches_cpu(c, Tensor::full({4, 3}, 3.0), 0.0, 1.0, "c = 1.5 c");
  // beta = 0 ignores what c held, even NaN (as BLAS does).
  const Tensor nan = Tensor::full({4, 3}, NAN, DType::f32, gpu);
  gpu_kernels().gemm(a, false, b, false, nan, 1.0, 0.0);
  expect_matches_cpu(nan, Tensor::zeros({4, 3}), 0.0, 1.0, "c = 0");
}

TEST(CudaGemm, OperandsOnTwoDevicesAreAnError) {
  SKIP_WITHOUT_GPU();
  const Tensor a = Tensor::ones({2, 2}, DType::f32, gpu);
  const Tensor b = Tensor::ones({2, 2});
  const Tensor c = Tensor::empty({2, 2}, DType::f32, gpu);
  expect_error_containing([&] { gpu_kernels().gemm(a, false, b, false, c, 1.0, 0.0); },
                          {"gemm", "cpu", "cuda:0"});
}

}  // namespace
}  // namespace topkformer::testing
