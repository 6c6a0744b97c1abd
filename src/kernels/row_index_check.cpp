#include "kernels/row_index_check.h"

namespace topkformer::kernels {

RowProblem check_rows(const Tensor& table, const Tensor& index, const Tensor& rows,
                      const char* op) {
  TKF_CHECK(table.dim() == 3 && index.dim() == 2 && rows.dim() == 3, op,
            ": expected table [G, M, D], index [G, N], rows [G, N, D], got ",
            shape_str(table.shape()), ", ", shape_str(index.shape()), ", ",
            shape_str(rows.shape()));
  TKF_CHECK(table.size(0) == index.size(0) && rows.size(0) == index.size(0) &&
                rows.size(1) == index.size(1) && rows.size(2) == table.size(2),
            op, ": shape mismatch, table ", shape_str(table.shape()), ", index ",
            shape_str(index.shape()), ", rows ", shape_str(rows.shape()));
  TKF_CHECK(table.is_contiguous() && index.is_contiguous() && rows.is_contiguous(), op,
            ": operands must be contiguous");
  check_same_dtype(table, rows, op);
  return {table.size(0), table.size(1), index.size(1), table.size(2)};
}

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

void throw_index_out_of_range(const char* op, std::int64_t value, std::int64_t position,
                              std::int64_t limit) {
  throw Error(detail::concat(op, ": index ", value, " at position ", position,
                             " is out of range [0, ", limit, ")"));
}

}  // namespace topkformer::kernels
