// Error checks for CUDA calls (CUDA builds only; host code and .cu files alike).
// See Note [CUDA errors].
#pragma once

#include <cuda_runtime_api.h>

// Note [CUDA errors]
//   TKF_CUDA_CHECK(cudaMalloc(&ptr, bytes));
//   kernel<<<blocks, threads, 0, stream>>>(...);
//   TKF_CUDA_CHECK_LAUNCH();
//
// A failed call throws topkformer::Error naming the call, the CUDA error (name
// and description), and the file and line. Libraries with their own status
// type (cuBLAS, NCCL) add a `check_status` overload for it in
// topkformer::cuda::detail, declared before their first TKF_CUDA_CHECK.
//
// Errors from kernels surface at the next call that synchronizes (or at the
// next TKF_CUDA_CHECK_LAUNCH); a kernel fault leaves the CUDA context unusable
// and every later call fails with the same error.

namespace topkformer::cuda::detail {

[[noreturn]] void throw_cuda_error(cudaError_t status, const char* call, const char* file,
                                   int line);

inline void check_status(cudaError_t status, const char* call, const char* file, int line) {
  if (status != cudaSuccess) throw_cuda_error(status, call, file, line);
}

}  // namespace topkformer::cuda::detail

#define TKF_CUDA_CHECK(call) \
  ::topkformer::cuda::detail::check_status((call), #call, __FILE__, __LINE__)

// After a kernel launch: reports launch errors (bad configuration, no kernel
// image for this GPU) and errors left by earlier asynchronous work.
#define TKF_CUDA_CHECK_LAUNCH() \
  ::topkformer::cuda::detail::check_status(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)
