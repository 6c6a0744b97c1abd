#include "kernels/sparse.h"

namespace topkformer::kernels {

SparseProblem check_sparse(const Tensor& entries, const Tensor& index, const Tensor& table,
                           const Tensor& rows, const char* op) {
  TKF_CHECK(entries.dim() == 3 && index.shape() == entries.shape() && table.dim() == 3 &&
                rows.dim() == 3 && table.size(0) == entries.size(0) &&
                rows.size(0) == entries.size(0) && rows.size(1) == entries.size(1) &&
                rows.size(2) == table.size(2),
            op, ": expected entries and index [G, R, k], table [G, M, D], rows [G, R, D], got ",
            shape_str(entries.shape()), ", ", shape_str(index.shape()), ", ",
            shape_str(table.shape()), ", ", shape_str(rows.shape()));
  TKF_CHECK(entries.is_contiguous() && index.is_contiguous() && table.is_contiguous() &&
                rows.is_contiguous(),
            op, ": operands must be contiguous");
  check_same_dtype(entries, table, op);
  check_same_dtype(entries, rows, op);
  return {entries.size(0), entries.size(1), entries.size(2), table.size(1), table.size(2)};
}

}  // namespace topkformer::kernels
