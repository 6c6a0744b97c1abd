#include "kernels/reduce.h"

namespace topkformer::kernels {

std::int64_t check_sum_rows(const Tensor& x, const Tensor& out) {
  TKF_CHECK(x.is_contiguous() && out.is_contiguous(), "sum_rows: operands must be contiguous");
  const std::int64_t n = x.dim() == 0 ? 1 : x.size(-1);
  TKF_CHECK(out.numel() * n == x.numel(), "sum_rows: ", shape_str(x.shape()), " -> ",
            shape_str(out.shape()));
  return n;
}

std::int64_t check_max_rows(const Tensor& x, const Tensor& indices) {
  TKF_CHECK(x.is_contiguous(), "max_rows: input must be contiguous");
  indices.check_dtype(DType::i64, "max_rows");
  const std::int64_t n = x.size(-1);
  TKF_CHECK(n > 0, "max_rows: cannot take the maximum of empty rows, shape ", shape_str(x.shape()));
  return n;
}

void check_sum_to(const Tensor& x, const Tensor& out) {
  TKF_CHECK(x.dim() == out.dim(), "sum_to: ranks differ, ", shape_str(x.shape()), " -> ",
            shape_str(out.shape()));
  for (int d = 0; d < x.dim(); ++d) {
    TKF_CHECK(out.size(d) == x.size(d) || out.size(d) == 1, "sum_to: cannot sum ",
              shape_str(x.shape()), " to ", shape_str(out.shape()));
  }
}

}  // namespace topkformer::kernels
