// cuBLAS for the CUDA backend: one handle per GPU, bound to that GPU's stream,
// and TKF_CUDA_CHECK for cuBLAS status codes.
#pragma once

#include <cublas_v2.h>

#include "cuda/check.h"

namespace topkformer::cuda {

namespace detail {
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call, const char* file,
                                     int line);

inline void check_status(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS) throw_cublas_error(status, call, file, line);
}
}  // namespace detail

// The handle of device `index` (created on first use, never destroyed), its
// work on stream(index), with a workspace of its own so that cuBLAS never
// allocates during a product.
cublasHandle_t cublas_handle(int index);

}  // namespace topkformer::cuda
