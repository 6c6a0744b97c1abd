// The binary ops for the binary tests of every device: the scalar arithmetic
// in double, the ops' names and which ops there are.
#pragma once

#include <cmath>
#include <string>

#include "topkformer/kernels/backend.h"

namespace topkformer::testing {

inline constexpr kernels::BinaryOp all_binary_ops[] = {
    kernels::BinaryOp::add, kernels::BinaryOp::sub, kernels::BinaryOp::mul, kernels::BinaryOp::div};

inline std::string op_name(kernels::BinaryOp op) {
  switch (op) {
    case kernels::BinaryOp::add:
      return "add";
    case kernels::BinaryOp::sub:
      return "sub";
    case kernels::BinaryOp::mul:
      return "mul";
    case kernels::BinaryOp::div:
      return "div";
  }
  return "?";
}

// The op's arithmetic in double.
inline double reference_binary(kernels::BinaryOp op, double a, double b) {
  switch (op) {
    case kernels::BinaryOp::add:
      return a + b;
    case kernels::BinaryOp::sub:
      return a - b;
    case kernels::BinaryOp::mul:
      return a * b;
    case kernels::BinaryOp::div:
      return a / b;
  }
  return NAN;
}

}  // namespace topkformer::testing
