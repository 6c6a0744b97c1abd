// The device-neutral part of the elementwise family (backend.h): the operand
// checks, and the scalar activations and derivatives that the CPU loops and
// the CUDA kernels both evaluate (std:: math resolves to the device's
// functions in nvcc's device code).
#pragma once

#include <cmath>

#include "kernels/host_device.h"
#include "topkformer/kernels/backend.h"

namespace topkformer::kernels {

// An input of an elementwise kernel has the output's shape and dtype.
void check_elementwise_input(const Tensor& input, const Tensor& out);

// unary_backward has a kernel for `op`: relu, gelu_tanh, gelu_erf or tanh.
void check_unary_backward_op(UnaryOp op);

constexpr double sqrt_2_over_pi = 0.7978845608028654;
constexpr double gelu_cubic = 0.044715;
constexpr double inv_sqrt_2 = 0.7071067811865476;
constexpr double inv_sqrt_2pi = 0.3989422804014327;

template <typename T>
TKF_HOST_DEVICE T gelu_tanh(T x) {
  const T inner = T(sqrt_2_over_pi) * (x + T(gelu_cubic) * x * x * x);
  return T(0.5) * x * (T(1) + std::tanh(inner));
}

template <typename T>
TKF_HOST_DEVICE T gelu_tanh_derivative(T x) {
  const T inner = T(sqrt_2_over_pi) * (x + T(gelu_cubic) * x * x * x);
  const T t = std::tanh(inner);
  const T d_inner = T(sqrt_2_over_pi) * (T(1) + T(3 * gelu_cubic) * x * x);
  return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * d_inner;
}

template <typename T>
TKF_HOST_DEVICE T gelu_erf(T x) {
  return T(0.5) * x * (T(1) + std::erf(x * T(inv_sqrt_2)));
}

template <typename T>
TKF_HOST_DEVICE T gelu_erf_derivative(T x) {
  return T(0.5) * (T(1) + std::erf(x * T(inv_sqrt_2))) + x * T(inv_sqrt_2pi) * std::exp(-x * x / 2);
}

}  // namespace topkformer::kernels
