#include "kernels/rows.h"

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

void throw_index_out_of_range(const char* op, std::int64_t value, std::int64_t position,
                              std::int64_t limit) {
  throw Error(detail::concat(op, ": index ", value, " at position ", position,
                             " is out of range [0, ", limit, ")"));
}

}  // namespace topkformer::kernels
