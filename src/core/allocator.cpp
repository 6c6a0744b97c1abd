#include "topkformer/core/allocator.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>
#include <mutex>
#include <utility>

#include "build_config.h"
#include "topkformer/core/error.h"
#if TOPKFORMER_WITH_CUDA
#include "cuda/cuda_allocator.h"
#include "cuda/device.h"
#endif

namespace topkformer {

void* Allocator::allocate(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  void* ptr = raw_allocate(bytes);
  const auto size = static_cast<std::int64_t>(bytes);
  const std::int64_t now = current_bytes_.fetch_add(size) + size;
  std::int64_t peak = peak_bytes_.load();
  while (now > peak && !peak_bytes_.compare_exchange_weak(peak, now)) {
  }
  allocation_count_.fetch_add(1);
  return ptr;
}

void Allocator::deallocate(void* ptr, std::size_t bytes) {
  if (ptr == nullptr) return;
  raw_deallocate(ptr, bytes);
  current_bytes_.fetch_sub(static_cast<std::int64_t>(bytes));
}

MemoryStats Allocator::stats() const {
  return {current_bytes(), peak_bytes(), allocation_count(), reserved_bytes(),
          peak_reserved_bytes()};
}

void ReservedBytes::add(std::int64_t bytes) {
  const std::int64_t now = current_.fetch_add(bytes) + bytes;
  std::int64_t peak = peak_.load();
  while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
  }
}

namespace {
std::size_t round_up(std::size_t bytes, std::size_t multiple) {
  return (bytes + multiple - 1) / multiple * multiple;
}
}  // namespace

CachingAllocator::CachingAllocator(std::size_t alignment, std::size_t small_limit,
                                   std::size_t small_segment, std::size_t segment_granule)
    : alignment_(alignment),
      small_limit_(small_limit),
      small_segment_(small_segment),
      segment_granule_(segment_granule),
      small_(alignment, alignment),
      large_(alignment, small_limit) {}

std::size_t CachingAllocator::segment_bytes(std::size_t bytes) const {
  TKF_CHECK(bytes <= SIZE_MAX - segment_granule_, "allocator: a request of ", bytes,
            " bytes is too large");
  return round_up(bytes, segment_granule_);
}

void* CachingAllocator::raw_allocate(std::size_t bytes) {
  std::lock_guard lock(mutex_);
  if (uncached(bytes)) {
    const std::size_t size = round_up(bytes, alignment_);
    void* ptr = acquire_or_release_cache(size, bytes);
    uncached_bytes_ += static_cast<std::int64_t>(size);
    reserved_.add(static_cast<std::int64_t>(size));
    return ptr;
  }
  BlockPool& pool = pool_for(bytes);
  // A free block more than twice the request is split only when the cache
  // is at its bound: splitting a large block for a small request is how a
  // pool fragments (a freed 16 MiB score buffer cut into 4 MiB pieces cannot
  // hold the next 16 MiB one), so while there is room a new segment is
  // better. At the bound, splitting comes before releasing: released
  // segments would have to be obtained again in the next step.
  const bool large = bytes >= small_limit_;
  if (void* ptr = pool.take(bytes, large ? 2 * bytes : SIZE_MAX)) return ptr;
  const std::size_t segment = large ? segment_bytes(bytes) : small_segment_;
  // Keep the cache within its bound (Note [caching allocator]): this request
  // is about to be live, so the peak it is measured against includes it.
  const auto live = static_cast<double>(current_bytes()) + static_cast<double>(bytes);
  const double limit = cache_limit * std::max(static_cast<double>(peak_bytes()), live);
  const double over = static_cast<double>(reserved_.current() + std::int64_t(segment)) - limit;
  if (over > 0) {
    if (void* ptr = pool.take(bytes)) return ptr;  // split a large block rather than grow
    release_free_segments(static_cast<std::size_t>(over));
  }
  pool.add_segment(acquire_or_release_cache(segment, bytes), segment);
  reserved_.add(static_cast<std::int64_t>(segment));
  ++segments_acquired_;
  return pool.take(bytes);
}

void* CachingAllocator::acquire_or_release_cache(std::size_t segment, std::size_t request) {
  if (void* ptr = acquire(segment)) return ptr;
  release_free_segments(SIZE_MAX);
  if (void* ptr = acquire(segment)) return ptr;
  throw Error(out_of_memory_message(request, segment));
}

void CachingAllocator::raw_deallocate(void* ptr, std::size_t bytes) {
  std::lock_guard lock(mutex_);
  if (uncached(bytes)) {
    const std::size_t size = round_up(bytes, alignment_);
    release({{ptr, size}});
    uncached_bytes_ -= static_cast<std::int64_t>(size);
    reserved_.add(-static_cast<std::int64_t>(size));
    return;
  }
  pool_for(bytes).give_back(ptr);
}

std::size_t CachingAllocator::release_free_segments(std::size_t bytes) {
  std::vector<BlockPool::Segment> segments = large_.remove_free_segments(bytes);
  std::size_t released = 0;
  for (const BlockPool::Segment& segment : segments) released += segment.bytes;
  if (released < bytes) {
    for (const BlockPool::Segment& segment : small_.remove_free_segments(bytes - released)) {
      segments.push_back(segment);
      released += segment.bytes;
    }
  }
  if (segments.empty()) return 0;
  release(segments);
  reserved_.add(-static_cast<std::int64_t>(released));
  segments_released_ += static_cast<std::int64_t>(segments.size());
  return released;
}

void CachingAllocator::empty_cache() {
  std::lock_guard lock(mutex_);
  release_free_segments(SIZE_MAX);
}

CachingAllocator::CacheStats CachingAllocator::cache_stats() const {
  std::lock_guard lock(mutex_);
  CacheStats stats;
  for (const BlockPool* pool : {&small_, &large_}) {
    stats.segments += static_cast<std::int64_t>(pool->segment_count());
    stats.segment_bytes += static_cast<std::int64_t>(pool->segment_bytes());
    stats.block_bytes += static_cast<std::int64_t>(pool->live_bytes());
    stats.free_bytes += static_cast<std::int64_t>(pool->free_bytes());
    stats.free_blocks += static_cast<std::int64_t>(pool->free_block_count());
  }
  stats.uncached_bytes = uncached_bytes_;
  stats.segments_acquired = segments_acquired_;
  stats.segments_released = segments_released_;
  return stats;
}

CpuAllocator::~CpuAllocator() {
  empty_cache();
}

void* CpuAllocator::acquire(std::size_t bytes) {
  if (bytes < small_limit) return std::aligned_alloc(alignment, bytes);
  void* ptr = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return ptr == MAP_FAILED ? nullptr : ptr;
}

void CpuAllocator::release(const std::vector<BlockPool::Segment>& segments) {
  for (const BlockPool::Segment& segment : segments) {
    if (segment.bytes < small_limit) {
      std::free(segment.base);
    } else {
      munmap(segment.base, segment.bytes);
    }
  }
}

std::string CpuAllocator::out_of_memory_message(std::size_t bytes, std::size_t) const {
  return detail::concat("CpuAllocator: out of memory allocating ", bytes,
                        " bytes (the framework's tensors hold ", current_bytes(),
                        " bytes; its cache was released)");
}

namespace {
struct AllocatorRegistry {
  std::mutex mutex;
  std::map<std::pair<int, int>, Allocator*> allocators;
};
AllocatorRegistry& registry() {
  static AllocatorRegistry instance;
  return instance;
}
std::pair<int, int> key_of(Device device) {
  return {static_cast<int>(device.type), device.index};
}

Allocator* find_registered(Device device) {
  AllocatorRegistry& reg = registry();
  std::lock_guard lock(reg.mutex);
  auto found = reg.allocators.find(key_of(device));
  return found == reg.allocators.end() ? nullptr : found->second;
}

#if TOPKFORMER_WITH_CUDA
// One CudaAllocator per visible GPU, created and registered on the first
// request for a CUDA device (devices that already have one keep it). They
// live until the process ends: freeing device memory during static
// destruction races the CUDA runtime's own teardown.
void register_cuda_allocators() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (int index = 0; index < cuda::device_count(); ++index) {
      if (find_registered(Device::cuda(index)) == nullptr) {
        register_allocator(Device::cuda(index), new cuda::CudaAllocator(index));
      }
    }
  });
}
#endif
}  // namespace

Allocator& allocator_for(Device device) {
  if (device.is_cpu()) {
    static CpuAllocator cpu_allocator;
    return cpu_allocator;
  }
  if (Allocator* found = find_registered(device)) return *found;
  check_device(device);  // throws, naming the device, unless it exists
#if TOPKFORMER_WITH_CUDA
  if (device.is_cuda()) {
    register_cuda_allocators();
    if (Allocator* found = find_registered(device)) return *found;
  }
#endif
  throw Error("allocator: no allocator for device " + device.str());
}

void register_allocator(Device device, Allocator* allocator) {
  AllocatorRegistry& reg = registry();
  std::lock_guard lock(reg.mutex);
  reg.allocators[key_of(device)] = allocator;
}

}  // namespace topkformer
