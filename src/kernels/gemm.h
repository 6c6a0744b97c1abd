// The device-neutral part of the gemm family (backend.h): how a batched
// product c = op(a) op(b) on strided views is handed to a BLAS
// (OpenBLAS on the CPU, cuBLAS on a GPU): the checks and the layout of each
// operand, computed once for every device.
#pragma once

#include <cstdint>

#include "topkformer/core/tensor.h"
#include "topkformer/kernels/backend.h"

namespace topkformer::kernels {

// A strided [rows, cols] matrix as a row-major BLAS sees it: as is with
// leading dimension `ld`, or, when its columns are contiguous, as the
// transpose of a row-major matrix.
struct BlasLayout {
  bool transposed = false;
  std::int64_t ld = 1;
};

struct GemmPlan {
  Shape batch;  // the leading dimensions, shared by a, b and c
  std::int64_t m = 0, n = 0, k = 0;
  BlasLayout a, b, c;  // c is never transposed
  // Whether there is nothing to multiply (m, n or the batch is empty) or
  // only c = beta * c to do (k = 0).
  bool empty() const { return m == 0 || n == 0 || shape_numel(batch) == 0; }
};

// Checks the operands of Backend::gemm (ranks, batch, shapes, dtypes, unit
// strides) and plans the product; errors name the shapes and strides.
GemmPlan plan_gemm(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b,
                   const Tensor& c);

// Does the product alone when it needs no multiplications (an empty c, or
// k = 0: c = beta * c, where beta = 0 ignores what c held, as BLAS does) and
// returns true; returns false when the BLAS has work to do.
bool gemm_without_products(Backend& backend, const GemmPlan& plan, const Tensor& c, double beta);

// Element offset (from the storage base) of batch item `item` of t, the batch
// extents taken row-major.
std::int64_t batch_offset(const Tensor& t, const Shape& batch, std::int64_t item);

}  // namespace topkformer::kernels
