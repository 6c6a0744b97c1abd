// The CUDA fused optimizer updates against their CPU twins: several steps of
// AdamW (bias corrections 1 - beta^t, with and without weight decay) and of
// SGD (with and without momentum and weight decay), every other step with a
// gradient scale (clipping), the parameter and the state compared after
// every step.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "cuda/cuda_test_util.h"
#include "test_util.h"

namespace topkformer::testing {
namespace {

const Shape update_shapes[] = {{1}, {37, 129}, {100003}};
constexpr int steps = 5;

// Both devices compute in double the same operations in the same order; they
// may differ only where one compiler fuses a multiply-add the other does not
// (e.g. beta1 m + (1 - beta1) g fused around either product), by an ulp of
// double, after which an f32 result almost always rounds the same way. So:
// 4 ulp of the dtype, relative to the value or to the size of the terms it
// is computed from (`floor`), which matters where a moment cancels to near 0.
double ulps(DType dtype, double count) {
  return count * (dtype == DType::f64 ? 0x1p-52 : 0x1p-23);
}

class CudaOptimizerKernel : public FloatingKernelTest {
 protected:
  // A pair of equal tensors, on the CPU and on the GPU.
  struct Pair {
    Tensor cpu, gpu;
    explicit Pair(const Tensor& value) : cpu(value.clone()), gpu(on_gpu(value)) {}
  };

  void expect_equal_state(const Pair& pair, double floor, const std::string& what) const {
    expect_matches_cpu(pair.gpu, pair.cpu, ulps(dtype(), 4), floor, what);
  }
};

TEST_P(CudaOptimizerKernel, AdamWStepsMatchCpu) {
  SKIP_WITHOUT_GPU();
  for (const Shape& shape : update_shapes) {
    for (const double weight_decay : {0.0, 0.01}) {
      Pair parameter(random_normal(shape, dtype(), 70));
      Pair first_moment(Tensor::zeros(shape, dtype()));
      Pair second_moment(Tensor::zeros(shape, dtype()));
      kernels::AdamWStep step;
      step.learning_rate = 1e-2;
      step.weight_decay = weight_decay;
      for (int t = 1; t <= steps; ++t) {
        step.grad_scale = t % 2 == 0 ? 0.3 : 1.0;  // every other step clipped
        step.bias_correction1 = 1.0 - std::pow(step.beta1, t);
        step.bias_correction2 = 1.0 - std::pow(step.beta2, t);
        const Pair grad(random_normal(shape, dtype(), 71 + t));
        cpu_kernels().adamw_update(parameter.cpu, grad.cpu, first_moment.cpu, second_moment.cpu,
                                   step);
        gpu_kernels().adamw_update(parameter.gpu, grad.gpu, first_moment.gpu, second_moment.gpu,
                                   step);
        const std::string what =
            shape_str(shape) + " wd " + std::to_string(weight_decay) + " step " + std::to_string(t);
        // Gradients are N(0, 1): m's terms are up to ~0.5, v's are >= 0 (no
        // cancellation) and p is N(0, 1) moved by ~lr per step.
        expect_equal_state(parameter, 1.0, "p, " + what);
        expect_equal_state(first_moment, 1.0, "m, " + what);
        expect_equal_state(second_moment, 1e-30, "v, " + what);
      }
    }
  }
}

TEST_P(CudaOptimizerKernel, SgdStepsMatchCpu) {
  SKIP_WITHOUT_GPU();
  for (const Shape& shape : update_shapes) {
    for (const auto& [momentum_factor, weight_decay] :
         {std::pair{0.0, 0.0}, {0.9, 0.0}, {0.9, 1e-4}}) {
      Pair parameter(random_normal(shape, dtype(), 80));
      Pair momentum(Tensor::zeros(shape, dtype()));
      kernels::SgdStep step;
      step.learning_rate = 0.1;
      step.momentum = momentum_factor;
      step.weight_decay = weight_decay;
      for (int t = 1; t <= steps; ++t) {
        step.grad_scale = t % 2 == 0 ? 0.3 : 1.0;  // every other step clipped
        const Pair grad(random_normal(shape, dtype(), 81 + t));
        cpu_kernels().sgd_update(parameter.cpu, grad.cpu, momentum.cpu, step);
        gpu_kernels().sgd_update(parameter.gpu, grad.gpu, momentum.gpu, step);
        const std::string what = shape_str(shape) + " momentum " + std::to_string(momentum_factor) +
                                 " wd " + std::to_string(weight_decay) + " step " +
                                 std::to_string(t);
        // The velocity sums terms of size ~1 (momentum u, g) and p moves by
        // lr times it.
        expect_equal_state(parameter, 1.0, "p, " + what);
        expect_equal_state(momentum, 1.0, "u, " + what);
      }
    }
  }
}

TEST_P(CudaOptimizerKernel, EmptyParametersAreANoOp) {
  SKIP_WITHOUT_GPU();
  run_and_synchronize([&] {
    const Tensor empty = Tensor::empty({0}, dtype(), gpu);
    gpu_kernels().adamw_update(empty, empty, empty, empty, kernels::AdamWStep{});
    gpu_kernels().sgd_update(empty, empty, empty, kernels::SgdStep{});
  });
}

INSTANTIATE_TEST_SUITE_P(Floating, CudaOptimizerKernel, floating_dtypes(), dtype_test_name);

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
