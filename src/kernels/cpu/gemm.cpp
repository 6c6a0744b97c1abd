// Batched matrix products through OpenBLAS, on strided views without copies
// (kernels/gemm.h decides how each view is passed).
#include <cblas.h>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/parallel.h"
#include "kernels/gemm.h"

namespace topkformer::kernels::cpu {

namespace {

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

}  // namespace

void CpuBackend::gemm(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b,
                      const Tensor& c, double alpha, double beta) {
  const GemmPlan plan = plan_gemm(a, transpose_a, b, transpose_b, c);
  if (gemm_without_products(*this, plan, c, beta)) return;
  const std::int64_t items = shape_numel(plan.batch);
  dispatch_floating(c.dtype(), "gemm", [&](auto zero) {
    using T = decltype(zero);
    const T* a_base = storage_base<T>(a);
    const T* b_base = storage_base<T>(b);
    T* c_base = storage_base<T>(c);
    for (std::int64_t item = 0; item < items; ++item) {
      blas_gemm(T{}, transpose_a != plan.a.transposed, transpose_b != plan.b.transposed, plan.m,
                plan.n, plan.k, alpha, a_base + batch_offset(a, plan.batch, item), plan.a.ld,
                b_base + batch_offset(b, plan.batch, item), plan.b.ld, beta,
                c_base + batch_offset(c, plan.batch, item), plan.c.ld);
    }
  });
}

}  // namespace topkformer::kernels::cpu
