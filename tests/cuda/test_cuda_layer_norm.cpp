// The CUDA layer norm beyond its parity cases (forward and backward against
// the CPU: tests/kernels/test_backend_parity.cpp): the GPU's own statistics
// feeding its backward, the same bits on every run, no rows, and errors.
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

class CudaLayerNormKernel : public FloatingKernelTest {};

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

INSTANTIATE_TEST_SUITE_P(Cuda, CudaLayerNormKernel, floating_dtypes(), dtype_test_name);

}  // namespace
}  // namespace topkformer::testing
