#include "cuda/cuda_allocator.h"

#include <cuda_runtime_api.h>

#include <cstdio>

#include "cuda/check.h"
#include "cuda/device.h"
#include "topkformer/core/error.h"

namespace topkformer::cuda {

namespace {

// "1073741824 bytes (1.00 GiB)"
std::string describe_bytes(std::int64_t bytes) {
  static const char* const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return topkformer::detail::concat(bytes, " bytes");
  double value = static_cast<double>(bytes) / 1024.0;
  int unit = 0;
  while (value >= 1024.0 && unit + 1 < 6) {
    value /= 1024.0;
    ++unit;
  }
  char scaled[32];
  std::snprintf(scaled, sizeof scaled, "%.2f %s", value, units[unit]);
  return topkformer::detail::concat(bytes, " bytes (", scaled, ")");
}

}  // namespace

void* CudaAllocator::acquire(std::size_t bytes) {
  DeviceGuard guard(index_);
  void* ptr = nullptr;
  const cudaError_t status = cudaMalloc(&ptr, bytes);
  if (status == cudaErrorMemoryAllocation) {
    static_cast<void>(cudaGetLastError());  // not sticky: clear it, the allocator goes on
    return nullptr;
  }
  detail::check_status(status, "cudaMalloc", __FILE__, __LINE__);
  return ptr;
}

void CudaAllocator::release(const std::vector<BlockPool::Segment>& segments) {
  DeviceGuard guard(index_);
  TKF_CUDA_CHECK(cudaDeviceSynchronize());
  for (const BlockPool::Segment& segment : segments) TKF_CUDA_CHECK(cudaFree(segment.base));
}

std::string CudaAllocator::out_of_memory_message(std::size_t bytes, std::size_t segment) const {
  std::string message = topkformer::detail::concat(
      "CUDA out of memory: cuda:", index_, " cannot allocate ",
      describe_bytes(static_cast<std::int64_t>(bytes)), " (a segment of ", segment,
      " bytes); the framework's tensors hold ", describe_bytes(current_bytes()),
      " and its allocator reserves ", describe_bytes(reserved_bytes()), " (cache emptied)");
  std::size_t free_bytes = 0, total_bytes = 0;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess) {
    message += topkformer::detail::concat(
        "; the device has ", describe_bytes(static_cast<std::int64_t>(free_bytes)), " free of ",
        describe_bytes(static_cast<std::int64_t>(total_bytes)));
  } else {
    static_cast<void>(cudaGetLastError());
  }
  return message;
}

}  // namespace topkformer::cuda
