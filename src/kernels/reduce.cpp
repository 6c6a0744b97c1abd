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

std::int64_t check_sum_squares(const Tensor& x, const Tensor& out) {
  TKF_CHECK(is_floating(x.dtype()), "sum_squares: expected an f32 or f64 tensor, got ",
            dtype_name(x.dtype()));
  TKF_CHECK(x.is_contiguous(), "sum_squares: input must be contiguous");
  TKF_CHECK(out.numel() == 1 && out.is_contiguous() && out.dtype() == DType::f64,
            "sum_squares: expected one f64 element for the result, got ", dtype_name(out.dtype()),
            " ", shape_str(out.shape()));
  TKF_CHECK(out.device() == x.device(), "sum_squares: operands on ", x.device().str(), " and ",
            out.device().str());
  return x.numel();
}

}  // namespace topkformer::kernels
