// Per-device allocators with exact memory statistics. Every tensor allocation
// goes through one of these, so the counters are how tests and benchmarks see
// the memory the paper's claims are about.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "topkformer/core/block_pool.h"
#include "topkformer/core/device.h"

namespace topkformer {

struct MemoryStats {
  std::int64_t current_bytes = 0;        // bytes held by live allocations (as requested)
  std::int64_t peak_bytes = 0;           // highest current_bytes since start or reset_peak()
  std::int64_t allocation_count = 0;     // allocations made since start or reset_counters()
  std::int64_t reserved_bytes = 0;       // bytes the allocator holds from the system
  std::int64_t peak_reserved_bytes = 0;  // highest reserved_bytes since start or reset_peak()
};

// Reserved bytes and their peak, for allocators that hold more memory from the
// system than their live allocations (block rounding, caches).
class ReservedBytes {
 public:
  void add(std::int64_t bytes);  // negative when memory goes back to the system
  std::int64_t current() const { return current_.load(); }
  std::int64_t peak() const { return peak_.load(); }
  void reset_peak() { peak_.store(current_.load()); }

 private:
  std::atomic<std::int64_t> current_{0};
  std::atomic<std::int64_t> peak_{0};
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual Device device() const = 0;

  // Returns nullptr for zero bytes (and counts nothing); throws Error when out of memory.
  void* allocate(std::size_t bytes);
  void deallocate(void* ptr, std::size_t bytes);

  std::int64_t current_bytes() const { return current_bytes_.load(); }
  std::int64_t peak_bytes() const { return peak_bytes_.load(); }
  std::int64_t allocation_count() const { return allocation_count_.load(); }
  // Bytes held from the system (live blocks with their rounding, plus any
  // cache) and their highest value since start or reset_peak(). An allocator
  // that holds nothing beyond its live allocations reports those.
  virtual std::int64_t reserved_bytes() const { return current_bytes(); }
  virtual std::int64_t peak_reserved_bytes() const { return peak_bytes(); }
  MemoryStats stats() const;

  // Starts new peak measurements (bytes and reserved bytes) from the current usage.
  void reset_peak() {
    peak_bytes_.store(current_bytes_.load());
    reset_peak_reserved();
  }
  void reset_counters() { allocation_count_.store(0); }
  // Returns cached free memory to the system (allocators that cache).
  virtual void empty_cache() {}

 protected:
  virtual void* raw_allocate(std::size_t bytes) = 0;
  virtual void raw_deallocate(void* ptr, std::size_t bytes) = 0;
  virtual void reset_peak_reserved() {}

 private:
  std::atomic<std::int64_t> current_bytes_{0};
  std::atomic<std::int64_t> peak_bytes_{0};
  std::atomic<std::int64_t> allocation_count_{0};
};

// Note [caching allocator]
// Both devices' allocators cache freed memory, because getting it from the
// system again is slow: the kernel hands large host blocks back zeroed page by
// page (a fresh 64 MiB matrix product output spent longer in page faults than
// in BLAS), and cudaMalloc/cudaFree synchronize the device. Requests of
// `small_limit` bytes and more come from segments of their own size rounded
// up to `segment_granule` (the CPU: 64 KiB; a GPU: 2 MiB, cudaMalloc's own
// granularity, so that reserved bytes are what the device holds). A BlockPool
// (Note [block pool]) splits and merges them, so a freed block serves any
// smaller request and the sizes of one step's buffers (chunked attention's
// grow chunk by chunk) share the same memory. Smaller requests come from a
// pool of `small_segment` byte segments of their own, or, where that is 0
// (the CPU, whose C library serves small blocks well), straight from the
// system without caching.
//
// The cache is bounded. Before a new segment is reserved, reserved bytes
// are compared with `cache_limit` times the live peak since reset_peak(), the
// request included: over it, the request splits any larger free block, and
// only when none holds it are wholly free segments released (largest first)
// before the new one is obtained. Under it, a free block more than twice the
// request is not split (a new segment is obtained instead), since splitting
// large blocks for small requests is how a pool fragments. What can stay
// above the bound is the free space inside segments that still hold a live
// block. 1.1 keeps every `bench model` row within 1.25x (docs/decisions.md).
// When the system has no memory for a segment, every wholly free segment is
// released and the request retried once before the allocator throws its
// out-of-memory error.
//
// Statistics: current/peak bytes count requested bytes, exactly; reserved
// bytes are the bytes held from the system (segments, and uncached blocks at
// their rounded size), the counterpart of PyTorch's memory_reserved().
class CachingAllocator : public Allocator {
 public:
  static constexpr double cache_limit = 1.1;

  struct CacheStats {
    std::int64_t segments = 0;       // held from the system, in both pools
    std::int64_t segment_bytes = 0;  // their bytes
    std::int64_t block_bytes = 0;    // in live blocks (at their block size)
    std::int64_t free_bytes = 0;     // in free blocks: the cache
    std::int64_t free_blocks = 0;
    std::int64_t uncached_bytes = 0;  // live blocks from the system directly
    // Segments obtained and released since the allocator was made: a count
    // that grows step after step means the cache is churning.
    std::int64_t segments_acquired = 0;
    std::int64_t segments_released = 0;
  };

  std::int64_t reserved_bytes() const override { return reserved_.current(); }
  std::int64_t peak_reserved_bytes() const override { return reserved_.peak(); }
  // Releases every wholly free segment.
  void empty_cache() override;
  CacheStats cache_stats() const;
  // The segment a request of `bytes` (at least small_limit) gets when no free
  // block holds it: `bytes` rounded up to the segment granule.
  std::size_t segment_bytes(std::size_t bytes) const;

 protected:
  // Blocks are multiples of `alignment`; requests below `small_limit` come
  // from `small_segment` byte segments, or uncached when that is 0; larger
  // ones from segments rounded up to `segment_granule`.
  CachingAllocator(std::size_t alignment, std::size_t small_limit, std::size_t small_segment,
                   std::size_t segment_granule);
  // Memory from the system, or nullptr when it has none.
  virtual void* acquire(std::size_t bytes) = 0;
  // Gives segments (or uncached blocks) back to the system.
  virtual void release(const std::vector<BlockPool::Segment>& segments) = 0;
  // The error for a request the system could not serve after the cache was released.
  virtual std::string out_of_memory_message(std::size_t bytes, std::size_t segment) const = 0;

  void* raw_allocate(std::size_t bytes) override;
  void raw_deallocate(void* ptr, std::size_t bytes) override;
  void reset_peak_reserved() override { reserved_.reset_peak(); }

 private:
  bool uncached(std::size_t bytes) const { return bytes < small_limit_ && small_segment_ == 0; }
  BlockPool& pool_for(std::size_t bytes) { return bytes < small_limit_ ? small_ : large_; }
  // acquire(segment), releasing the cache and retrying once when the system
  // has no memory; throws the out-of-memory error for `request` after that.
  void* acquire_or_release_cache(std::size_t segment, std::size_t request);
  // Releases wholly free segments worth at least `bytes` (all for SIZE_MAX),
  // as many as there are; returns the bytes released.
  std::size_t release_free_segments(std::size_t bytes);

  std::size_t alignment_;
  std::size_t small_limit_;
  std::size_t small_segment_;
  std::size_t segment_granule_;
  mutable std::mutex mutex_;
  BlockPool small_;
  BlockPool large_;
  std::int64_t uncached_bytes_ = 0;
  std::int64_t segments_acquired_ = 0;
  std::int64_t segments_released_ = 0;
  ReservedBytes reserved_;
};

// 64-byte aligned host memory (a cache line, an AVX-512 register): blocks of
// 1 MiB and more from mmap'd segments, cached and split (Note [caching
// allocator]); smaller ones from the C library, uncached. munmap gives a
// released segment back to the system at once, where free() might keep it.
class CpuAllocator final : public CachingAllocator {
 public:
  static constexpr std::size_t alignment = 64;
  static constexpr std::size_t small_limit = std::size_t{1} << 20;

  static constexpr std::size_t segment_granule = std::size_t{64} << 10;

  CpuAllocator() : CachingAllocator(alignment, small_limit, 0, segment_granule) {}
  ~CpuAllocator() override;
  Device device() const override { return Device::cpu(); }

 protected:
  void* acquire(std::size_t bytes) override;
  void release(const std::vector<BlockPool::Segment>& segments) override;
  std::string out_of_memory_message(std::size_t bytes, std::size_t segment) const override;
};

// The allocator that serves a device. A registered allocator wins; otherwise
// a CUDA build creates and registers a CudaAllocator for every visible GPU on
// the first request for a CUDA device (src/cuda/cuda_allocator.h). Throws Error
// naming the device when it is not available (check_device in device.h).
Allocator& allocator_for(Device device);
// Serves `device` with `allocator` from now on (which must outlive its use).
void register_allocator(Device device, Allocator* allocator);

}  // namespace topkformer
