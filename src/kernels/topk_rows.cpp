#include "kernels/topk_rows.h"

namespace topkformer::kernels {

void check_topk_rows(const Tensor& x, std::int64_t k, const Tensor& values, const Tensor& indices) {
  TKF_CHECK(x.dim() >= 1, "topk_rows: needs rank >= 1, got shape ", shape_str(x.shape()));
  TKF_CHECK(x.is_contiguous() && values.is_contiguous() && indices.is_contiguous(),
            "topk_rows: operands must be contiguous");
  const std::int64_t n = x.size(-1);
  TKF_CHECK(1 <= k && k <= n, "topk_rows: k = ", k, " must be in [1, ", n, "] for rows of ",
            shape_str(x.shape()));
  Shape expected = x.shape();
  expected.back() = k;
  TKF_CHECK(values.shape() == expected && indices.shape() == expected,
            "topk_rows: values and indices must be ", shape_str(expected), ", got ",
            shape_str(values.shape()), " and ", shape_str(indices.shape()));
  check_same_dtype(x, values, "topk_rows");
}

}  // namespace topkformer::kernels
