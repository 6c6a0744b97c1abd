// Batched matrix products through cuBLAS, on strided views without copies
// (kernels/gemm.h decides how each view is passed, as for OpenBLAS).
// See Note [cuBLAS products].
#include <cublas_v2.h>

#include <cstdint>
#include <optional>

#include "kernels/cuda/cublas.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/launch.h"
#include "kernels/gemm.h"
#include "topkformer/core/runtime.h"

// Note [cuBLAS products]
// cuBLAS is column-major: a row-major matrix with leading dimension ld is
// its transpose in column-major order, so the row-major product
// C = op(A) op(B) is issued as the column-major C^T = op(B)^T op(A)^T, i.e.
// with the operands swapped and m and n exchanged.

namespace topkformer::kernels {

namespace {

// The batch of an operand as strided batches: `inner` items `inner_stride`
// apart (the innermost batch dimension, or all of them when they merge into
// one stride), repeated over the remaining outer items.
struct BatchSplit {
  std::int64_t outer_items = 1, inner_items = 1;
  std::int64_t a_stride = 0, b_stride = 0, c_stride = 0;
  int inner_dims = 0;  // trailing batch dimensions covered by one cuBLAS call
};

// The stride of t over its trailing `dims` batch dimensions taken as one (0
// when they all have extent 1), or nothing when they do not step like one
// dimension. Extent-1 dimensions do not matter.
std::optional<std::int64_t> merged_stride(const Tensor& t, const Shape& batch, int dims) {
  const int rank = static_cast<int>(batch.size());
  std::optional<std::int64_t> step;
  std::int64_t expected = 0;
  for (int d = rank - 1; d >= rank - dims; --d) {
    if (batch[d] == 1) continue;
    if (!step) {
      step = t.stride(d);
    } else if (t.stride(d) != expected) {
      return std::nullopt;
    }
    expected = t.stride(d) * batch[d];
  }
  return step.value_or(0);
}

BatchSplit split_batch(const Tensor& a, const Tensor& b, const Tensor& c, const Shape& batch) {
  BatchSplit split;
  const int rank = static_cast<int>(batch.size());
  if (rank == 0) return split;
  // The most trailing dimensions that every operand steps over with one
  // stride (one dimension always does).
  for (int dims = rank; dims >= 1; --dims) {
    const auto a_stride = merged_stride(a, batch, dims);
    const auto b_stride = merged_stride(b, batch, dims);
    const auto c_stride = merged_stride(c, batch, dims);
    if (!a_stride || !b_stride || !c_stride) continue;
    split.inner_dims = dims;
    split.a_stride = *a_stride;
    split.b_stride = *b_stride;
    split.c_stride = *c_stride;
    break;
  }
  for (int d = 0; d < rank; ++d) {
    (d < rank - split.inner_dims ? split.outer_items : split.inner_items) *= batch[d];
  }
  return split;
}

cublasComputeType_t compute_type(DType dtype) {
  if (dtype == DType::f64) return CUBLAS_COMPUTE_64F;
  switch (matmul_precision()) {
    case MatmulPrecision::fp32:
      return CUBLAS_COMPUTE_32F;
    case MatmulPrecision::tf32:
      return CUBLAS_COMPUTE_32F_FAST_TF32;
    case MatmulPrecision::bf16:
      return CUBLAS_COMPUTE_32F_FAST_16BF;
    case MatmulPrecision::count:
      break;
  }
  return CUBLAS_COMPUTE_32F;
}

}  // namespace

void CudaBackend::gemm(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b,
                       const Tensor& c, double alpha, double beta) {
  const GemmPlan plan = plan_gemm(a, transpose_a, b, transpose_b, c);
  const cuda::Launch launch(c, {&a, &b}, "gemm");
  if (gemm_without_products(*this, plan, c, beta)) return;
  const BatchSplit split = split_batch(a, b, c, plan.batch);
  const bool is_double = c.dtype() == DType::f64;
  const cudaDataType_t type = is_double ? CUDA_R_64F : CUDA_R_32F;
  const float alpha_f = static_cast<float>(alpha), beta_f = static_cast<float>(beta);
  const void* alpha_ptr = is_double ? static_cast<const void*>(&alpha) : &alpha_f;
  const void* beta_ptr = is_double ? static_cast<const void*>(&beta) : &beta_f;
  const auto* a_base = static_cast<const char*>(a.storage()->data());
  const auto* b_base = static_cast<const char*>(b.storage()->data());
  auto* c_base = static_cast<char*>(c.storage()->data());
  const std::int64_t element = static_cast<std::int64_t>(c.element_size());
  // Row-major op(A) is [m, k]; passed as the column-major second operand.
  const cublasOperation_t op_a = (transpose_a != plan.a.transposed) ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = (transpose_b != plan.b.transposed) ? CUBLAS_OP_T : CUBLAS_OP_N;
  const Shape outer_batch(plan.batch.begin(), plan.batch.end() - split.inner_dims);
  cublasHandle_t handle = cuda::cublas_handle(launch.device_index());
  for (std::int64_t item = 0; item < split.outer_items; ++item) {
    // The first matrix of this run of inner items: offsets from the outer
    // coordinates alone (the inner ones are 0).
    const std::int64_t a_offset = batch_offset(a, outer_batch, item);
    const std::int64_t b_offset = batch_offset(b, outer_batch, item);
    const std::int64_t c_offset = batch_offset(c, outer_batch, item);
    TKF_CUDA_CHECK(cublasGemmStridedBatchedEx_64(
        handle, op_b, op_a, plan.n, plan.m, plan.k, alpha_ptr, b_base + b_offset * element, type,
        plan.b.ld, split.b_stride, a_base + a_offset * element, type, plan.a.ld, split.a_stride,
        beta_ptr, c_base + c_offset * element, type, plan.c.ld, split.c_stride, split.inner_items,
        compute_type(c.dtype()), CUBLAS_GEMM_DEFAULT));
  }
}

}  // namespace topkformer::kernels
