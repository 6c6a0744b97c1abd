// The device-neutral part of the rows family (backend.h): the operand checks of
// gather_rows and scatter_add_rows, and the index range check that the sparse
// products share, so that every device throws the same errors.
#pragma once

#include <cstdint>

#include "topkformer/core/tensor.h"

namespace topkformer::kernels {

struct RowProblem {
  std::int64_t groups, source_rows, picked, width;  // G, M, N, D
};

// table [G, M, D], index [G, N], rows [G, N, D], contiguous, table and rows of one dtype.
RowProblem check_rows(const Tensor& table, const Tensor& index, const Tensor& rows, const char* op);

// The error for index[position] = value outside [0, limit) (position counts
// the index tensor's elements in row-major order).
[[noreturn]] void throw_index_out_of_range(const char* op, std::int64_t value,
                                           std::int64_t position, std::int64_t limit);

// Throws for the first of index[0, count) outside [0, limit) (host memory).
template <typename I>
void check_index_range(const I* index, std::int64_t count, std::int64_t limit, const char* op) {
  for (std::int64_t i = 0; i < count; ++i) {
    if (index[i] < 0 || index[i] >= limit) {
      throw_index_out_of_range(op, static_cast<std::int64_t>(index[i]), i, limit);
    }
  }
}

}  // namespace topkformer::kernels
