// The device-neutral part of the random family (backend.h): the operand checks
// of dropout and the plan both devices draw its mask by.
#pragma once

#include <cstdint>

#include "topkformer/kernels/backend.h"

namespace topkformer::kernels {

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

}  // namespace topkformer::kernels
