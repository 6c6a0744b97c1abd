// The caching allocator for one GPU (CUDA builds only): Note [caching
// allocator] in core/allocator.h, with cudaMalloc'd segments.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "topkformer/core/allocator.h"

// Requests below 1 MiB share 2 MiB segments split into 512-byte multiples
// (PyTorch's small pool), so a model's many small tensors do not each cost a
// cudaMalloc. All work on a device goes on its one stream (device.h), so a
// freed block can be handed out again at once: the new owner's work queues
// behind the old owner's. Segments go back to the driver only after
// cudaDeviceSynchronize, since work queued before a block was freed may
// still use it and cudaFree'd memory may be handed to anyone. The
// out-of-memory error names the request, the allocator's usage and the
// device's free memory.

namespace topkformer::cuda {

class CudaAllocator final : public CachingAllocator {
 public:
  static constexpr std::size_t alignment = 512;
  static constexpr std::size_t small_limit = std::size_t{1} << 20;
  static constexpr std::size_t small_segment = std::size_t{2} << 20;
  static constexpr std::size_t segment_granule = std::size_t{2} << 20;

  explicit CudaAllocator(int index)
      : CachingAllocator(alignment, small_limit, small_segment, segment_granule), index_(index) {}
  Device device() const override { return Device::cuda(index_); }

 protected:
  void* acquire(std::size_t bytes) override;
  void release(const std::vector<BlockPool::Segment>& segments) override;
  std::string out_of_memory_message(std::size_t bytes, std::size_t segment) const override;

 private:
  int index_;
};

}  // namespace topkformer::cuda
