// Per-device allocators with exact memory statistics. Every tensor allocation
// goes through one of these, so the counters are how tests and benchmarks see
// the memory the paper's claims are about.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "topkformer/core/device.h"

namespace topkformer {

struct MemoryStats {
  std::int64_t current_bytes = 0;        // bytes held by live allocations (as requested)
  std::int64_t peak_bytes = 0;           // highest current_bytes since start or reset_peak()
  std::int64_t allocation_count = 0;     // allocations made since start or reset_counters()
  std::int64_t reserved_bytes = 0;       // bytes the allocator holds from the system
  std::int64_t peak_reserved_bytes = 0;  // highest reserved_bytes since start or reset_peak()
};

// The size class a request of `bytes` is served from, shared by the caching
// allocators: below `large_bytes`, `bytes` rounded up to a multiple of
// `small_multiple`; from `large_bytes` on (a power of two), rounded up to a
// multiple of power / 8 where power <= bytes <= 2 * power, so a block is at
// most 12.5% larger than the request and a few classes cover each octave.
// Throws Error for requests too large to round.
std::size_t size_class(std::size_t bytes, std::size_t small_multiple, std::size_t large_bytes);

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

// 64-byte aligned host memory (a cache line, an AVX-512 register).
//
// Blocks of 1 MiB and more are cached when freed and reused for a later
// request of the same size class (sizes rounded up to 1/8 of their power of
// two), because the operating system hands large blocks back zeroed page by
// page: a 64 MiB matrix product output would otherwise spend longer in page
// faults than in BLAS. current/peak bytes count requested bytes, exactly;
// reserved bytes include the cache. empty_cache() returns it to the system.
class CpuAllocator final : public Allocator {
 public:
  static constexpr std::size_t alignment = 64;
  static constexpr std::size_t min_cached_bytes = std::size_t{1} << 20;

  ~CpuAllocator() override;
  Device device() const override { return Device::cpu(); }
  std::int64_t reserved_bytes() const override { return reserved_.current(); }
  std::int64_t peak_reserved_bytes() const override { return reserved_.peak(); }
  void empty_cache() override;
  // The block size a request is served from.
  static std::size_t block_size(std::size_t bytes) {
    return size_class(bytes, alignment, min_cached_bytes);
  }

 protected:
  void* raw_allocate(std::size_t bytes) override;
  void raw_deallocate(void* ptr, std::size_t bytes) override;
  void reset_peak_reserved() override { reserved_.reset_peak(); }

 private:
  ReservedBytes reserved_;
  std::mutex cache_mutex_;
  std::unordered_map<std::size_t, std::vector<void*>> cache_;  // block size -> free blocks
};

// The allocator that serves a device. A registered allocator wins; otherwise
// a CUDA build creates and registers a CudaAllocator for every visible GPU on
// the first request for a CUDA device (src/cuda/cuda_allocator.h). Throws Error
// naming the device when it is not available (check_device in device.h).
Allocator& allocator_for(Device device);
// Serves `device` with `allocator` from now on (which must outlive its use).
void register_allocator(Device device, Allocator* allocator);

}  // namespace topkformer
