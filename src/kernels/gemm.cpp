#include "kernels/gemm.h"

#include <algorithm>
#include <optional>

namespace topkformer::kernels {

namespace {

std::optional<BlasLayout> blas_layout(std::int64_t rows, std::int64_t cols, std::int64_t row_stride,
                                      std::int64_t col_stride) {
  if ((cols == 1 || col_stride == 1) &&
      (rows == 1 || row_stride >= std::max<std::int64_t>(cols, 1))) {
    return BlasLayout{false, rows == 1 ? std::max<std::int64_t>(cols, 1) : row_stride};
  }
  if ((rows == 1 || row_stride == 1) &&
      (cols == 1 || col_stride >= std::max<std::int64_t>(rows, 1))) {
    return BlasLayout{true, cols == 1 ? std::max<std::int64_t>(rows, 1) : col_stride};
  }
  return std::nullopt;
}

BlasLayout operand_layout(const Tensor& t, const char* name) {
  const auto layout = blas_layout(t.size(-2), t.size(-1), t.stride(-2), t.stride(-1));
  TKF_CHECK(layout.has_value(), "gemm: operand ", name, " of shape ", shape_str(t.shape()),
            " with strides ", shape_str(t.strides()),
            " has no unit stride in its last two dimensions; make it contiguous first");
  return *layout;
}

}  // namespace

GemmPlan plan_gemm(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b,
                   const Tensor& c) {
  TKF_CHECK(a.dim() >= 2 && a.dim() == b.dim() && a.dim() == c.dim(),
            "gemm: operands must have the same rank >= 2, got ", shape_str(a.shape()), ", ",
            shape_str(b.shape()), " and ", shape_str(c.shape()));
  check_same_dtype(a, b, "gemm");
  check_same_dtype(a, c, "gemm");
  GemmPlan plan;
  plan.batch = Shape(c.shape().begin(), c.shape().end() - 2);
  TKF_CHECK(Shape(a.shape().begin(), a.shape().end() - 2) == plan.batch &&
                Shape(b.shape().begin(), b.shape().end() - 2) == plan.batch,
            "gemm: batch dimensions differ: ", shape_str(a.shape()), ", ", shape_str(b.shape()),
            " -> ", shape_str(c.shape()));
  plan.m = c.size(-2);
  plan.n = c.size(-1);
  plan.k = transpose_a ? a.size(-2) : a.size(-1);
  TKF_CHECK((transpose_a ? a.size(-1) : a.size(-2)) == plan.m &&
                (transpose_b ? b.size(-1) : b.size(-2)) == plan.k &&
                (transpose_b ? b.size(-2) : b.size(-1)) == plan.n,
            "gemm: shape mismatch, ", shape_str(a.shape()), (transpose_a ? "^T" : ""), " x ",
            shape_str(b.shape()), (transpose_b ? "^T" : ""), " -> ", shape_str(c.shape()));
  if (plan.empty() || plan.k == 0) return plan;
  plan.a = operand_layout(a, "a");
  plan.b = operand_layout(b, "b");
  plan.c = operand_layout(c, "c");
  TKF_CHECK(!plan.c.transposed,
            "gemm: the output's last dimension must have unit stride, got strides ",
            shape_str(c.strides()));
  return plan;
}

bool gemm_without_products(Backend& backend, const GemmPlan& plan, const Tensor& c, double beta) {
  if (plan.empty()) return true;
  if (plan.k != 0) return false;
  if (beta == 0.0) {
    backend.fill(c, 0.0);
  } else {
    backend.affine(c, beta, 0.0, c);
  }
  return true;
}

std::int64_t batch_offset(const Tensor& t, const Shape& batch, std::int64_t item) {
  std::int64_t position = t.offset();
  for (int d = static_cast<int>(batch.size()) - 1; d >= 0; --d) {
    position += (item % batch[d]) * t.stride(d);
    item /= batch[d];
  }
  return position;
}

}  // namespace topkformer::kernels
