// The CUDA elementwise kernels beyond their parity rows (tests/kernels/
// test_backend_parity.cpp: every map on every layout, fill, arange, copy):
// empty tensors launch nothing, offsets past 2^31, and the operand errors.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cuda/cuda_test_util.h"
#include "kernels/binary_reference.h"
#include "kernels/unary_reference.h"
#include "test_util.h"
#include "topkformer/core/allocator.h"

namespace topkformer::testing {
namespace {

using kernels::BinaryOp;
using kernels::UnaryOp;

class CudaElementwiseKernel : public FloatingKernelTest {};

TEST_P(CudaElementwiseKernel, EmptyTensorsAreANoOp) {
  SKIP_WITHOUT_GPU();
  const Tensor x = Tensor::empty({0, 5}, dtype(), gpu);
  const Tensor out = Tensor::empty({0, 5}, dtype(), gpu);
  run_and_synchronize([&] {
    gpu_kernels().unary(UnaryOp::exp, x, out);
    gpu_kernels().unary_backward(UnaryOp::relu, x, x, out);
    gpu_kernels().binary(BinaryOp::add, x, x, out);
    gpu_kernels().affine(x, 2.0, 1.0, out);
    gpu_kernels().fill(out, 1.0);
  });
}

INSTANTIATE_TEST_SUITE_P(Cuda, CudaElementwiseKernel, floating_dtypes(), dtype_test_name);

// A view whose offsets pass 2^31 elements (8 GiB of f32) takes the kernels'
// 64-bit index path, for reading (unary, binary) and for writing (fill).
TEST(CudaElementwiseLargeOffsets, ViewsSpanningMoreThan2Pow31ElementsUse64BitOffsets) {
  SKIP_WITHOUT_GPU();
  const std::int64_t step = std::int64_t{1} << 30;
  {
    const Tensor big = Tensor::empty({2 * step + 64}, DType::f32, gpu);
    const Tensor sparse = big.slice(0, 0, 2 * step + 1, step);  // offsets 0, 2^30, 2^31
    ASSERT_EQ(sparse.shape(), Shape({3}));
    gpu_kernels().fill(sparse, 2.5);
    Tensor(sparse.narrow(0, 2, 1)).copy_(Tensor::full({1}, -4.0));
    EXPECT_EQ(sparse.to_vector<float>(), std::vector<float>({2.5f, 2.5f, -4.0f}));
    const Tensor out = Tensor::empty({3}, DType::f32, gpu);
    gpu_kernels().unary(UnaryOp::neg, sparse, out);
    EXPECT_EQ(out.to_vector<float>(), std::vector<float>({-2.5f, -2.5f, 4.0f}));
    gpu_kernels().binary(BinaryOp::mul, sparse, out, out);
    EXPECT_EQ(out.to_vector<float>(), std::vector<float>({-6.25f, -6.25f, -16.0f}));
  }
  allocator_for(gpu).empty_cache();
}

// ---- errors ----

TEST(CudaElementwiseErrors, OperandsOnAnotherDeviceShapesAndOps) {
  SKIP_WITHOUT_GPU();
  const Tensor on_host = Tensor::ones({2, 3});
  const Tensor x = on_gpu(on_host);
  const Tensor out = Tensor::empty({2, 3}, DType::f32, gpu);
  expect_error_containing([&] { gpu_kernels().unary(UnaryOp::exp, on_host, out); },
                          {"unary", "cuda:0", "cpu"});
  expect_error_containing([&] { gpu_kernels().binary(BinaryOp::add, x, on_host, out); },
                          {"binary", "cuda:0", "cpu"});
  expect_error_containing([&] { gpu_kernels().affine(x, 1.0, 0.0, on_host); },
                          {"affine", "expected a CUDA tensor"});
  expect_error_containing([&] { gpu_kernels().fill(on_host, 1.0); },
                          {"fill", "expected a CUDA tensor"});
  expect_error_containing(
      [&] {
        gpu_kernels().unary(UnaryOp::exp, Tensor::empty({3, 2}, DType::f32, gpu), out);
      },
      {"elementwise", "[3, 2]", "[2, 3]"});
  expect_error_containing(
      [&] {
        gpu_kernels().unary(UnaryOp::exp, Tensor::empty({2, 3}, DType::f64, gpu), out);
      },
      {"elementwise", "dtype mismatch"});
  expect_error_containing([&] { gpu_kernels().unary_backward(UnaryOp::exp, x, x, out); },
                          {"unary_backward", "no derivative kernel"});
  expect_error_containing(
      [&] {
        const Tensor indices = Tensor::zeros({2, 3}, DType::i64, gpu);
        gpu_kernels().unary(UnaryOp::neg, indices, indices);
      },
      {"unary", "f32 or f64"});
}

}  // namespace
}  // namespace topkformer::testing
