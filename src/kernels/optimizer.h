// The device-neutral part of the optimizer family (backend.h): the operand
// checks, and one element of each fused update, shared by the CPU loop and the
// CUDA kernel so that both devices evaluate the same expression, in double
// whatever the dtype.
#pragma once

#include <cmath>
#include <initializer_list>

#include "kernels/host_device.h"
#include "topkformer/kernels/backend.h"

namespace topkformer::kernels {

// The operands of a fused optimizer update: contiguous, one shape, one dtype.
void check_update_operands(std::initializer_list<const Tensor*> operands, const char* op);

template <typename T>
TKF_HOST_DEVICE inline void adamw_element(T& p, T g, T& m, T& v, const AdamWStep& step) {
  const double gi = g * step.grad_scale;
  const double mi = step.beta1 * m + (1.0 - step.beta1) * gi;
  const double vi = step.beta2 * v + (1.0 - step.beta2) * gi * gi;
  m = static_cast<T>(mi);
  v = static_cast<T>(vi);
  const double update =
      (mi / step.bias_correction1) / (std::sqrt(vi / step.bias_correction2) + step.eps) +
      step.weight_decay * p;
  p = static_cast<T>(p - step.learning_rate * update);
}

template <typename T>
TKF_HOST_DEVICE inline void sgd_element(T& p, T g, T& u, const SgdStep& step) {
  const double gi = g * step.grad_scale;
  const double velocity = step.momentum * u + gi + step.weight_decay * p;
  u = static_cast<T>(velocity);
  p = static_cast<T>(p - step.learning_rate * velocity);
}

}  // namespace topkformer::kernels
