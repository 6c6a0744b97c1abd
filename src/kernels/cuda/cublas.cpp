#include "kernels/cuda/cublas.h"

#include <array>
#include <mutex>
#include <string>

#include "cuda/device.h"
#include "topkformer/core/error.h"

namespace topkformer::cuda {

namespace detail {
void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
  std::string where = file;
  const std::size_t source_dir = where.rfind("/src/");
  if (source_dir != std::string::npos) where = where.substr(source_dir + 1);
  throw Error(topkformer::detail::concat("cuBLAS error: ", call, " failed with ",
                                         cublasGetStatusName(status), " (",
                                         cublasGetStatusString(status), ") at ", where, ":", line));
}
}  // namespace detail

namespace {

// cuBLAS's recommended workspace on Hopper (32 MiB; 4 MiB suffice before).
// It comes from cudaMalloc, not the caching allocator: like the CUDA context
// it is a fixed cost per device, outside the tensor statistics.
constexpr std::size_t workspace_bytes = std::size_t{32} << 20;
constexpr int max_devices = 64;

}  // namespace

cublasHandle_t cublas_handle(int index) {
  static std::array<cublasHandle_t, max_devices> handles{};
  static std::mutex mutex;
  check_device(index);
  TKF_CHECK(index < max_devices, "cuBLAS: device index ", index, " above ", max_devices - 1);
  const std::lock_guard<std::mutex> lock(mutex);
  if (handles[index] == nullptr) {
    DeviceGuard guard(index);
    cublasHandle_t handle = nullptr;
    TKF_CUDA_CHECK(cublasCreate(&handle));
    TKF_CUDA_CHECK(cublasSetStream(handle, stream(index)));
    void* workspace = nullptr;
    TKF_CUDA_CHECK(cudaMalloc(&workspace, workspace_bytes));
    TKF_CUDA_CHECK(cublasSetWorkspace(handle, workspace, workspace_bytes));
    handles[index] = handle;
  }
  return handles[index];
}

}  // namespace topkformer::cuda
