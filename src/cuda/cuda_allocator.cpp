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

void* CudaAllocator::raw_allocate(std::size_t bytes) {
  const std::size_t size = block_size(bytes);
  std::lock_guard lock(mutex_);
  auto found = cache_.find(size);
  if (found != cache_.end() && !found->second.empty()) {
    void* ptr = found->second.back();
    found->second.pop_back();
    return ptr;
  }
  DeviceGuard guard(index_);
  void* ptr = nullptr;
  cudaError_t status = cudaMalloc(&ptr, size);
  if (status == cudaErrorMemoryAllocation) {
    static_cast<void>(cudaGetLastError());  // not sticky: clear it, the allocator goes on
    release_cache();
    status = cudaMalloc(&ptr, size);
    if (status == cudaErrorMemoryAllocation) {
      static_cast<void>(cudaGetLastError());
      throw Error(out_of_memory_message(bytes, size));
    }
  }
  detail::check_status(status, "cudaMalloc", __FILE__, __LINE__);
  reserved_.add(static_cast<std::int64_t>(size));
  return ptr;
}

void CudaAllocator::raw_deallocate(void* ptr, std::size_t bytes) {
  // No CUDA call (this runs in destructors): the block waits in the cache.
  std::lock_guard lock(mutex_);
  cache_[block_size(bytes)].push_back(ptr);
}

void CudaAllocator::empty_cache() {
  std::lock_guard lock(mutex_);
  release_cache();
}

void CudaAllocator::release_cache() {
  bool any = false;
  for (const auto& entry : cache_) any = any || !entry.second.empty();
  if (!any) return;
  DeviceGuard guard(index_);
  // Work queued before a block was freed may still be using it; once it goes
  // back to the driver it may be handed to anyone, so let that work finish.
  TKF_CUDA_CHECK(cudaDeviceSynchronize());
  for (auto& [size, blocks] : cache_) {
    while (!blocks.empty()) {
      void* ptr = blocks.back();
      blocks.pop_back();
      reserved_.add(-static_cast<std::int64_t>(size));
      TKF_CUDA_CHECK(cudaFree(ptr));
    }
  }
  cache_.clear();
}

std::string CudaAllocator::out_of_memory_message(std::size_t bytes, std::size_t block) const {
  std::string message = topkformer::detail::concat(
      "CUDA out of memory: cuda:", index_, " cannot allocate ",
      describe_bytes(static_cast<std::int64_t>(bytes)), " (a block of ", block,
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
