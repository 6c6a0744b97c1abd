// The operand checks of the pointwise kernels (elementwise maps, dropout,
// fused optimizer updates), shared by every device.
#pragma once

#include <cstdint>
#include <initializer_list>

#include "topkformer/kernels/backend.h"

namespace topkformer::kernels {

// An input of an elementwise kernel has the output's shape and dtype.
void check_elementwise_input(const Tensor& input, const Tensor& out);

// unary_backward has a kernel for `op`: relu, gelu_tanh, gelu_erf or tanh.
void check_unary_backward_op(UnaryOp op);

// What a dropout kernel needs besides its operands.
struct DropoutPlan {
  std::int64_t n = 0;           // x's last extent: a row's elements
  std::int64_t row_words = 0;   // words between consecutive rows: addressing.row_words, or n
  std::uint32_t threshold = 0;  // keep iff (word >> 8) >= threshold
};

// Checks x and out (contiguous, one shape and dtype), p in [0, 1) and that the
// addressing's columns have one entry per element. The plan is left zero for
// an empty x (nothing to draw).
DropoutPlan check_dropout(const Tensor& x, double p, const DropoutAddressing& addressing,
                          const Tensor& out);

// The operands of a fused optimizer update: contiguous, one shape, one dtype.
void check_update_operands(std::initializer_list<const Tensor*> operands, const char* op);

}  // namespace topkformer::kernels
