// The CUDA layer norm against its CPU twin on the same inputs: forward (y,
// mean, rstd) and backward (dx, and dgamma, dbeta as column sums over many
// rows), for rows of 1, 7, 768 and 5000 columns (a warp per row up to 1024,
// a block beyond), 3000 rows so that the column sums take several chunks and
// a second pass, and rows shifted far from 0.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/cuda_test_util.h"
#include "test_util.h"

namespace topkformer::testing {
namespace {

constexpr double eps = 1e-5;
constexpr double unit_roundoff_f64 = 0x1p-53;

class CudaLayerNormKernel : public FloatingKernelTest {
 protected:
  // Both sides take each sum in double, in different orders (the CPU in
  // sequence, the GPU by a fixed tree): on top of the dtype's rounding they
  // differ by roundings of the partial sums, which for `terms` terms of size
  // `scale` grow like sqrt(terms) * scale (a random walk of roundings). The
  // row statistics sum terms of size |x| <= ~4 + |offset|; the normalised
  // values and the gradients are then of order 1 (floor 1).
  double tolerance_for(std::int64_t terms, double scale) const {
    return tol() + 16 * unit_roundoff_f64 * std::sqrt(static_cast<double>(terms)) * scale;
  }
};

struct Problem {
  Tensor x, gamma, beta;
};

// Rows of N(offset, 1), gamma and beta N(0, 1).
Problem make_problem(const Shape& shape, DType dtype, double offset) {
  const std::int64_t d = shape.back();
  const Tensor x = random_normal(shape, dtype, 80);
  std::vector<double> xv = read_values(x);
  for (double& v : xv) v += offset;
  write_values(x, xv);
  return {x, random_normal({d}, dtype, 81), random_normal({d}, dtype, 82)};
}

struct Forward {
  Tensor y, mean, rstd;
};

Forward forward_on(kernels::Backend& kernels, const Problem& p, Device device) {
  const std::int64_t rows = p.x.numel() / p.x.size(-1);
  Forward f{Tensor::empty(p.x.shape(), p.x.dtype(), device),
            Tensor::empty({rows}, p.x.dtype(), device), Tensor::empty({rows}, p.x.dtype(), device)};
  kernels.layer_norm(p.x.to(device), p.gamma.to(device), p.beta.to(device), eps, f.y, f.mean,
                     f.rstd);
  return f;
}

struct Backward {
  Tensor dx, dgamma, dbeta;
};

// The backward from given statistics (both devices get the CPU's, so that
// only the backward is compared).
Backward backward_on(kernels::Backend& kernels, const Problem& p, const Forward& stats,
                     const Tensor& dy, Device device) {
  const std::int64_t d = p.x.size(-1);
  Backward b{Tensor::empty(p.x.shape(), p.x.dtype(), device),
             random_normal({d}, p.x.dtype(), 90).to(device),  // overwritten
             random_normal({d}, p.x.dtype(), 91).to(device)};
  kernels.layer_norm_backward(p.x.to(device), p.gamma.to(device), stats.mean.to(device),
                              stats.rstd.to(device), dy.to(device), b.dx, b.dgamma, b.dbeta);
  return b;
}

struct Case {
  Shape shape;
  double offset;
};

const Case cases[] = {{{3000, 1}, 0.0},    {{3000, 7}, 0.0},   {{3000, 768}, 0.0},
                      {{3000, 5000}, 0.0}, {{2, 3, 33}, 0.0},  {{40, 1024}, 0.0},
                      {{40, 1025}, 0.0},   {{300, 768}, 50.0}, {{100, 5000}, 50.0}};

std::string describe(const Case& c) {
  return shape_str(c.shape) + " offset " + std::to_string(c.offset);
}

TEST_P(CudaLayerNormKernel, ForwardMatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (const Case& c : cases) {
    const Problem p = make_problem(c.shape, dtype(), c.offset);
    const Forward want = forward_on(cpu_kernels(), p, Device::cpu());
    const Forward got = forward_on(gpu_kernels(), p, gpu);
    const double rel = tolerance_for(c.shape.back(), 4.0 + c.offset);
    const std::string what = describe(c);
    expect_matches_cpu(got.y, want.y, rel, 1.0, what + " y");
    expect_matches_cpu(got.mean, want.mean, rel, 1.0, what + " mean");
    expect_matches_cpu(got.rstd, want.rstd, rel, 1.0, what + " rstd");
  }
}

TEST_P(CudaLayerNormKernel, BackwardMatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (const Case& c : cases) {
    const Problem p = make_problem(c.shape, dtype(), c.offset);
    const Forward stats = forward_on(cpu_kernels(), p, Device::cpu());
    const Tensor dy = random_normal(c.shape, dtype(), 83);
    const Backward want = backward_on(cpu_kernels(), p, stats, dy, Device::cpu());
    const Backward got = backward_on(gpu_kernels(), p, stats, dy, gpu);
    const std::int64_t d = c.shape.back(), rows = p.x.numel() / d;
    const std::string what = describe(c);
    expect_matches_cpu(got.dx, want.dx, tolerance_for(d, 4.0), 1.0, what + " dx");
    // Column sums of `rows` terms of order 1: relative to their natural size
    // sqrt(rows) (as for sum_to in test_cuda_reduce.cpp).
    const double column_floor = std::sqrt(static_cast<double>(rows));
    expect_matches_cpu(got.dgamma, want.dgamma, tolerance_for(rows, 1.0), column_floor,
                       what + " dgamma");
    expect_matches_cpu(got.dbeta, want.dbeta, tolerance_for(rows, 1.0), column_floor,
                       what + " dbeta");
  }
}

// The GPU's own statistics feed its backward as in training, and two runs
// give the same bits (no atomics: the column sums have a fixed order).
TEST_P(CudaLayerNormKernel, ForwardAndBackwardAreDeterministic) {
  SKIP_WITHOUT_GPU();
  for (const Shape& shape : {Shape{3000, 768}, Shape{500, 5000}, Shape{3000, 7}}) {
    const Problem p = make_problem(shape, dtype(), 0.0);
    const Tensor dy = random_normal(shape, dtype(), 84);
    std::vector<std::vector<double>> runs[2];
    for (auto& run : runs) {
      const Forward f = forward_on(gpu_kernels(), p, gpu);
      const Backward b = backward_on(gpu_kernels(), p, f, dy, gpu);
      for (const Tensor* t : {&f.y, &f.mean, &f.rstd, &b.dx, &b.dgamma, &b.dbeta}) {
        run.push_back(read_values(t->to(Device::cpu())));
      }
    }
    EXPECT_TRUE(runs[0] == runs[1]) << shape_str(shape);
  }
}

// No rows: nothing to normalise, and the parameter gradients are empty sums, 0.
TEST_P(CudaLayerNormKernel, NoRowsGiveZeroParameterGradients) {
  SKIP_WITHOUT_GPU();
  const Problem p{Tensor::empty({0, 8}, dtype()), random_normal({8}, dtype(), 85),
                  random_normal({8}, dtype(), 86)};
  const Forward f = forward_on(gpu_kernels(), p, gpu);
  const Backward b = backward_on(gpu_kernels(), p, f, Tensor::empty({0, 8}, dtype()), gpu);
  EXPECT_EQ(read_values(b.dgamma.to(Device::cpu())), std::vector<double>(8, 0.0));
  EXPECT_EQ(read_values(b.dbeta.to(Device::cpu())), std::vector<double>(8, 0.0));
}

TEST_P(CudaLayerNormKernel, RejectsParametersOfTheWrongSize) {
  SKIP_WITHOUT_GPU();
  const Problem p{random_normal({4, 6}, dtype(), 87), random_normal({5}, dtype(), 88),
                  random_normal({6}, dtype(), 89)};
  expect_error_containing([&] { forward_on(gpu_kernels(), p, gpu); },
                          {"layer_norm", "gamma [5]", "[4, 6]"});
}

TEST_P(CudaLayerNormKernel, OperandsOnAnotherDeviceAreAnError) {
  SKIP_WITHOUT_GPU();
  const Tensor x = on_gpu(random_normal({4, 6}, dtype(), 92));
  const Tensor gamma = random_normal({6}, dtype(), 93);  // left on the CPU
  const Tensor on_device = on_gpu(gamma);
  const Tensor rows = Tensor::empty({4}, dtype(), gpu);
  expect_error_containing(
      [&] {
        gpu_kernels().layer_norm(x, gamma, on_device, eps, Tensor::empty({4, 6}, dtype(), gpu),
                                 rows, rows);
      },
      {"layer_norm", "cuda:0", "cpu"});
  expect_error_containing(
      [&] {
        gpu_kernels().layer_norm_backward(x, gamma, rows, rows, x,
                                          Tensor::empty({4, 6}, dtype(), gpu), on_device,
                                          Tensor::empty({6}, dtype(), gpu));
      },
      {"layer_norm_backward", "cuda:0", "cpu"});
}

INSTANTIATE_TEST_SUITE_P(Floating, CudaLayerNormKernel, floating_dtypes(), dtype_test_name);

}  // namespace
}  // namespace topkformer::testing
