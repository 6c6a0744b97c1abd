// Batched matrix products through OpenBLAS, on strided views without copies.
#include <cblas.h>

#include <optional>

#include "cpu_backend.h"
#include "dispatch.h"

namespace topkformer::kernels {

using namespace cpu;

namespace {

// How a strided [rows, cols] matrix is handed to row-major BLAS: as is with
// leading dimension `ld`, or, when its columns are contiguous, as the
// transpose of a row-major matrix.
struct BlasLayout {
  bool transposed = false;
  std::int64_t ld = 1;
};

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

void blas_gemm(float, bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k,
               double alpha, const void* a, std::int64_t lda, const void* b, std::int64_t ldb,
               double beta, void* c, std::int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
              k, static_cast<float>(alpha), static_cast<const float*>(a), lda,
              static_cast<const float*>(b), ldb, static_cast<float>(beta), static_cast<float*>(c),
              ldc);
}

void blas_gemm(double, bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k,
               double alpha, const void* a, std::int64_t lda, const void* b, std::int64_t ldb,
               double beta, void* c, std::int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
              k, alpha, static_cast<const double*>(a), lda, static_cast<const double*>(b), ldb,
              beta, static_cast<double*>(c), ldc);
}

// Element offset of batch item `item` (row-major over the batch extents).
std::int64_t batch_offset(const Tensor& t, const Shape& batch, std::int64_t item) {
  std::int64_t position = t.offset();
  for (int d = static_cast<int>(batch.size()) - 1; d >= 0; --d) {
    position += (item % batch[d]) * t.stride(d);
    item /= batch[d];
  }
  return position;
}

}  // namespace

void CpuBackend::gemm(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b,
                      const Tensor& c, double alpha, double beta) {
  TKF_CHECK(a.dim() >= 2 && a.dim() == b.dim() && a.dim() == c.dim(),
            "gemm: operands must have the same rank >= 2, got ", shape_str(a.shape()), ", ",
            shape_str(b.shape()), " and ", shape_str(c.shape()));
  check_same_dtype(a, b, "gemm");
  check_same_dtype(a, c, "gemm");
  const Shape batch(c.shape().begin(), c.shape().end() - 2);
  TKF_CHECK(Shape(a.shape().begin(), a.shape().end() - 2) == batch &&
                Shape(b.shape().begin(), b.shape().end() - 2) == batch,
            "gemm: batch dimensions differ: ", shape_str(a.shape()), ", ", shape_str(b.shape()),
            " -> ", shape_str(c.shape()));
  const std::int64_t m = c.size(-2), n = c.size(-1);
  const std::int64_t k = transpose_a ? a.size(-2) : a.size(-1);
  TKF_CHECK((transpose_a ? a.size(-1) : a.size(-2)) == m &&
                (transpose_b ? b.size(-1) : b.size(-2)) == k &&
                (transpose_b ? b.size(-2) : b.size(-1)) == n,
            "gemm: shape mismatch, ", shape_str(a.shape()), (transpose_a ? "^T" : ""), " x ",
            shape_str(b.shape()), (transpose_b ? "^T" : ""), " -> ", shape_str(c.shape()));
  if (m == 0 || n == 0 || shape_numel(batch) == 0) return;
  if (k == 0) {  // an empty sum: c = beta * c, where beta = 0 ignores what c held (as BLAS does)
    if (beta == 0.0) {
      fill(c, 0.0);
    } else {
      affine(c, beta, 0.0, c);
    }
    return;
  }
  const BlasLayout layout_a = operand_layout(a, "a");
  const BlasLayout layout_b = operand_layout(b, "b");
  const BlasLayout layout_c = operand_layout(c, "c");
  TKF_CHECK(!layout_c.transposed,
            "gemm: the output's last dimension must have unit stride, got "
            "strides ",
            shape_str(c.strides()));
  const std::int64_t items = shape_numel(batch);
  dispatch_floating(c.dtype(), "gemm", [&](auto zero) {
    using T = decltype(zero);
    const T* a_base = storage_base<T>(a);
    const T* b_base = storage_base<T>(b);
    T* c_base = storage_base<T>(c);
    for (std::int64_t item = 0; item < items; ++item) {
      blas_gemm(T{}, transpose_a != layout_a.transposed, transpose_b != layout_b.transposed, m, n,
                k, alpha, a_base + batch_offset(a, batch, item), layout_a.ld,
                b_base + batch_offset(b, batch, item), layout_b.ld, beta,
                c_base + batch_offset(c, batch, item), layout_c.ld);
    }
  });
}

}  // namespace topkformer::kernels
