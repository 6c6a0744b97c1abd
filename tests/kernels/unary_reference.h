// The unary ops for the unary tests of every device: the scalar functions in
// double, the ops' names, which ops there are and which have a backward.
#pragma once

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "topkformer/kernels/backend.h"

namespace topkformer::testing {

inline constexpr kernels::UnaryOp all_unary_ops[] = {
    kernels::UnaryOp::neg,      kernels::UnaryOp::exp,  kernels::UnaryOp::log,
    kernels::UnaryOp::tanh,     kernels::UnaryOp::relu, kernels::UnaryOp::gelu_tanh,
    kernels::UnaryOp::gelu_erf, kernels::UnaryOp::sqrt};

// The ops that unary_backward takes (tanh's from the forward output y).
inline constexpr kernels::UnaryOp unary_backward_ops[] = {
    kernels::UnaryOp::relu, kernels::UnaryOp::gelu_tanh, kernels::UnaryOp::gelu_erf,
    kernels::UnaryOp::tanh};

// log and sqrt are defined (and finite) only for positive inputs.
inline bool needs_positive_input(kernels::UnaryOp op) {
  return op == kernels::UnaryOp::log || op == kernels::UnaryOp::sqrt;
}

inline std::string op_name(kernels::UnaryOp op) {
  switch (op) {
    case kernels::UnaryOp::neg:
      return "neg";
    case kernels::UnaryOp::exp:
      return "exp";
    case kernels::UnaryOp::log:
      return "log";
    case kernels::UnaryOp::tanh:
      return "tanh";
    case kernels::UnaryOp::relu:
      return "relu";
    case kernels::UnaryOp::gelu_tanh:
      return "gelu_tanh";
    case kernels::UnaryOp::gelu_erf:
      return "gelu_erf";
    case kernels::UnaryOp::sqrt:
      return "sqrt";
  }
  return "?";
}

inline double reference_gelu_tanh(double x) {
  const double inner = std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x);
  return 0.5 * x * (1.0 + std::tanh(inner));
}

inline double reference_gelu_erf(double x) {
  return 0.5 * x * (1.0 + std::erf(x / std::numbers::sqrt2));
}

// The op's scalar function in double.
inline double reference_unary(kernels::UnaryOp op, double x) {
  switch (op) {
    case kernels::UnaryOp::neg:
      return -x;
    case kernels::UnaryOp::exp:
      return std::exp(x);
    case kernels::UnaryOp::log:
      return std::log(x);
    case kernels::UnaryOp::tanh:
      return std::tanh(x);
    case kernels::UnaryOp::relu:
      return std::max(x, 0.0);
    case kernels::UnaryOp::gelu_tanh:
      return reference_gelu_tanh(x);
    case kernels::UnaryOp::gelu_erf:
      return reference_gelu_erf(x);
    case kernels::UnaryOp::sqrt:
      return std::sqrt(x);
  }
  return NAN;
}

}  // namespace topkformer::testing
