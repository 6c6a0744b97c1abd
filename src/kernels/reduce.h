// The device-neutral part of the reduce family (backend.h): the operand checks
// of the reductions, shared by every device.
#pragma once

#include <cstdint>

#include "topkformer/core/tensor.h"

namespace topkformer::kernels {

// sum_rows: x and out contiguous, out holding one element per row of x.
// Returns the row length (1 for a scalar x).
std::int64_t check_sum_rows(const Tensor& x, const Tensor& out);

// max_rows: x contiguous with non-empty rows, indices i64. Returns the row length.
std::int64_t check_max_rows(const Tensor& x, const Tensor& indices);

// sum_to: out has x's rank and each of its extents is x's or 1.
void check_sum_to(const Tensor& x, const Tensor& out);

// sum_squares: x contiguous and floating, out one contiguous f64 element on
// x's device. Returns x's element count.
std::int64_t check_sum_squares(const Tensor& x, const Tensor& out);

}  // namespace topkformer::kernels
