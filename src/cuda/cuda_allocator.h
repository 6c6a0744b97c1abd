// The caching allocator for one GPU (CUDA builds only).
// See Note [caching allocator].
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "topkformer/core/allocator.h"

// Note [caching allocator]
// Requests are rounded up to a size class (size_class in allocator.h: a
// multiple of 512 bytes below 1 MiB, 1/8 of the power of two above) and
// served from the cache of freed blocks of that class; cudaMalloc is called
// only when the cache has none. Freed blocks are never returned to the driver
// until empty_cache(), or until a cudaMalloc fails: then the cache is emptied
// and the cudaMalloc retried once before the allocator throws "CUDA out of
// memory" with the request and the allocator's usage. All work on a device
// goes on its one stream (device.h), so a freed block can be handed out again
// at once: the new owner's work queues behind the old owner's.
//
// Statistics: current/peak bytes count requested bytes, as on the CPU;
// reserved bytes are the bytes cudaMalloc'd and held (live blocks at their
// class size plus the cache), the counterpart of PyTorch's
// memory_reserved(); peak_reserved_bytes() that of max_memory_reserved().

namespace topkformer::cuda {

class CudaAllocator final : public Allocator {
 public:
  static constexpr std::size_t small_multiple = 512;
  static constexpr std::size_t large_bytes = std::size_t{1} << 20;

  explicit CudaAllocator(int index) : index_(index) {}
  Device device() const override { return Device::cuda(index_); }
  std::int64_t reserved_bytes() const override { return reserved_.current(); }
  std::int64_t peak_reserved_bytes() const override { return reserved_.peak(); }
  // Waits for the device to finish its work, then cudaFree's every cached block.
  void empty_cache() override;
  // The block size a request is served from.
  static std::size_t block_size(std::size_t bytes) {
    return size_class(bytes, small_multiple, large_bytes);
  }

 protected:
  void* raw_allocate(std::size_t bytes) override;
  void raw_deallocate(void* ptr, std::size_t bytes) override;
  void reset_peak_reserved() override { reserved_.reset_peak(); }

 private:
  void release_cache();  // with mutex_ held
  std::string out_of_memory_message(std::size_t bytes, std::size_t block) const;

  int index_;
  ReservedBytes reserved_;
  std::mutex mutex_;
  std::unordered_map<std::size_t, std::vector<void*>> cache_;  // block size -> free blocks
};

}  // namespace topkformer::cuda
