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
  std::int64_t current_bytes = 0;     // bytes held by live allocations (as requested)
  std::int64_t peak_bytes = 0;        // highest current_bytes since start or reset_peak()
  std::int64_t allocation_count = 0;  // allocations made since start or reset_counters()
  std::int64_t reserved_bytes = 0;    // bytes the allocator holds from the system
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
  virtual std::int64_t reserved_bytes() const { return current_bytes(); }
  MemoryStats stats() const;

  // Starts a new peak measurement from the current usage.
  void reset_peak() { peak_bytes_.store(current_bytes_.load()); }
  void reset_counters() { allocation_count_.store(0); }
  // Returns cached free memory to the system (allocators that cache).
  virtual void empty_cache() {}

 protected:
  virtual void* raw_allocate(std::size_t bytes) = 0;
  virtual void raw_deallocate(void* ptr, std::size_t bytes) = 0;

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
  std::int64_t reserved_bytes() const override { return reserved_bytes_.load(); }
  void empty_cache() override;
  // The block size a request is served from.
  static std::size_t block_size(std::size_t bytes);

 protected:
  void* raw_allocate(std::size_t bytes) override;
  void raw_deallocate(void* ptr, std::size_t bytes) override;

 private:
  std::atomic<std::int64_t> reserved_bytes_{0};
  std::mutex cache_mutex_;
  std::unordered_map<std::size_t, std::vector<void*>> cache_;  // block size -> free blocks
};

// The allocator that serves a device. Backends other than the CPU register theirs.
Allocator& allocator_for(Device device);
void register_allocator(Device device, Allocator* allocator);

}  // namespace topkformer
