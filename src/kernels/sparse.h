// The device-neutral part of the sparse family (backend.h): the operand checks
// of the products with a row-sparse matrix (index range: kernels/rows.h).
#pragma once

#include <cstdint>

#include "kernels/rows.h"
#include "topkformer/core/tensor.h"

namespace topkformer::kernels {

struct SparseProblem {
  std::int64_t groups, rows, k, table_rows, width;  // G, R, k, M, D
};

// entries and index [G, R, k], table [G, M, D], dense rows [G, R, D], contiguous,
// entries, table and rows of one dtype.
SparseProblem check_sparse(const Tensor& entries, const Tensor& index, const Tensor& table,
                           const Tensor& rows, const char* op);

}  // namespace topkformer::kernels
