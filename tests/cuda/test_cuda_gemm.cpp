// cuBLAS gemm against the CPU's OpenBLAS gemm on the same operands: every
// transpose combination, views with a leading dimension and transposed
// views, stride-0 (broadcast) batches, batches that do and do not merge into
// one cuBLAS call, alpha/beta, k = 0, f64, and the TF32/bf16 precisions.
#include <cmath>
#include <string>

#include "cuda/cuda_test_util.h"
#include "kernels/gemm_reference.h"
#include "test_util.h"
#include "topkformer/core/runtime.h"

namespace topkformer::testing {
namespace {

// Runs gemm on both devices from the same values and compares. Sums of k
// products of unit normals have magnitude ~sqrt(k): the bound is relative to
// that.
void check_against_cpu(const Shape& batch, std::int64_t m, std::int64_t n, std::int64_t k, bool ta,
                       bool tb, MatrixLayout view_a, MatrixLayout view_b, double alpha, double beta,
                       DType dtype, double rel_tol) {
  const auto run = [&](Device device) {
    const Tensor a = ta ? matrix(batch, k, m, view_a, dtype, 1, device)
                        : matrix(batch, m, k, view_a, dtype, 1, device);
    const Tensor b = tb ? matrix(batch, n, k, view_b, dtype, 2, device)
                        : matrix(batch, k, n, view_b, dtype, 2, device);
    Shape c_shape = batch;
    c_shape.push_back(m);
    c_shape.push_back(n);
    const Tensor c = random_normal(c_shape, dtype, 3).to(device);
    kernels::backend(device).gemm(a, ta, b, tb, c, alpha, beta);
    return c;
  };
  const std::string what = "batch " + shape_str(batch) + " m " + std::to_string(m) + " n " +
                           std::to_string(n) + " k " + std::to_string(k) + (ta ? " a^T" : "") +
                           (tb ? " b^T" : "") + " views " + std::to_string(int(view_a)) + "," +
                           std::to_string(int(view_b));
  expect_matches_cpu(run(gpu), run(Device::cpu()), rel_tol, std::max(1.0, std::sqrt(double(k))),
                     what);
}

TEST(CudaGemm, EveryTransposeAndViewMatchesTheCpu) {
  SKIP_WITHOUT_GPU();
  const MatrixLayout views[] = {MatrixLayout::row_major, MatrixLayout::column_major,
                                MatrixLayout::padded_row_major};
  for (const DType dtype : {DType::f32, DType::f64}) {
    for (const bool ta : {false, true}) {
      for (const bool tb : {false, true}) {
        for (const MatrixLayout va : views) {
          for (const MatrixLayout vb : views) {
            check_against_cpu({}, 37, 29, 45, ta, tb, va, vb, 1.0, 0.0, dtype, tolerance(dtype));
          }
        }
      }
    }
  }
}

TEST(CudaGemm, AlphaBetaAndShapesOfOneRowOrColumn) {
  SKIP_WITHOUT_GPU();
  check_against_cpu({}, 1, 300, 70, false, false, MatrixLayout::row_major, MatrixLayout::row_major,
                    0.5, 2.0, DType::f32, 1e-5);
  check_against_cpu({}, 300, 1, 70, false, true, MatrixLayout::row_major, MatrixLayout::row_major,
                    -1.5, 1.0, DType::f32, 1e-5);
  check_against_cpu({}, 64, 64, 1, true, false, MatrixLayout::padded_row_major,
                    MatrixLayout::row_major, 1.0, -1.0, DType::f32, 1e-5);
}

TEST(CudaGemm, BatchesOfRankThreeAndFour) {
  SKIP_WITHOUT_GPU();
  check_against_cpu({5}, 33, 17, 65, false, true, MatrixLayout::row_major, MatrixLayout::row_major,
                    1.0, 0.0, DType::f32, 1e-5);
  // The attention shapes: [B, H, L, d] x [B, H, L, d]^T.
  check_against_cpu({2, 3}, 50, 50, 16, false, true, MatrixLayout::row_major,
                    MatrixLayout::row_major, 0.25, 0.0, DType::f32, 1e-5);
  // Padded operands do not merge their batch dimensions: one call per outer item.
  check_against_cpu({2, 3}, 20, 30, 40, true, false, MatrixLayout::padded_row_major,
                    MatrixLayout::column_major, 1.0, 1.0, DType::f64, 1e-12);
}

TEST(CudaGemm, BroadcastAndPermutedBatches) {
  SKIP_WITHOUT_GPU();
  const auto run = [](Device device) {
    // a is one matrix expanded over the batch (stride 0), b a permuted view
    // whose batch dimensions are in the wrong order to merge.
    const Tensor a = random_normal({1, 1, 12, 9}, DType::f32, 4).to(device).expand({3, 4, 12, 9});
    const Tensor b = random_normal({4, 3, 9, 7}, DType::f32, 5).to(device).permute({1, 0, 2, 3});
    const Tensor c = Tensor::zeros({3, 4, 12, 7}, DType::f32, device);
    kernels::backend(device).gemm(a, false, b, false, c, 1.0, 0.0);
    return c;
  };
  expect_matches_cpu(run(gpu), run(Device::cpu()), 1e-5, 3.0, "broadcast and permuted batches");
}

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

// TF32 keeps 10 mantissa bits and bf16 8 of the inputs (accumulating in
// fp32), so products of unit normals carry a relative error of about 2^-11
// and 2^-8 per term, averaging down over k terms: bounds with a safety
// factor, and the check that the fp32 default is really not reduced.
TEST(CudaGemm, ReducedPrecisionsStayWithinTheirRounding) {
  SKIP_WITHOUT_GPU();
  struct Case {
    MatmulPrecision precision;
    double rel_tol;
  };
  for (const Case& c : {Case{MatmulPrecision::tf32, 4e-3}, Case{MatmulPrecision::bf16, 3e-2}}) {
    set_matmul_precision(c.precision);
    check_against_cpu({2}, 128, 96, 256, false, true, MatrixLayout::row_major,
                      MatrixLayout::row_major, 1.0, 0.0, DType::f32, c.rel_tol);
    set_matmul_precision(MatmulPrecision::fp32);
  }
  check_against_cpu({2}, 128, 96, 256, false, true, MatrixLayout::row_major,
                    MatrixLayout::row_major, 1.0, 0.0, DType::f32, 1e-5);
}

TEST(CudaGemm, OperandsOnTwoDevicesAreAnError) {
  SKIP_WITHOUT_GPU();
  const Tensor a = Tensor::ones({2, 2}, DType::f32, gpu);
  const Tensor b = Tensor::ones({2, 2});
  const Tensor c = Tensor::empty({2, 2}, DType::f32, gpu);
  expect_error_containing([&] { gpu_kernels().gemm(a, false, b, false, c, 1.0, 0.0); },
                          {"gemm", "cpu", "cuda:0"});
}

TEST(MatmulPrecision, ParsesTheThreeNamesAndRejectsOthers) {
  EXPECT_EQ(parse_matmul_precision("fp32"), MatmulPrecision::fp32);
  EXPECT_EQ(parse_matmul_precision("tf32"), MatmulPrecision::tf32);
  EXPECT_EQ(parse_matmul_precision("bf16"), MatmulPrecision::bf16);
  EXPECT_EQ(matmul_precision_name(MatmulPrecision::bf16), "bf16");
  expect_error_containing([] { parse_matmul_precision("fp16"); }, {"fp32|tf32|bf16", "fp16"});
}

}  // namespace
}  // namespace topkformer::testing
