#include "topkformer/core/allocator.h"

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

std::size_t size_class(std::size_t bytes, std::size_t small_multiple, std::size_t large_bytes) {
  TKF_CHECK(bytes <= std::numeric_limits<std::size_t>::max() / 2, "allocator: a request of ", bytes,
            " bytes is too large");
  if (bytes < large_bytes) return round_up(bytes, small_multiple);
  std::size_t power = large_bytes;
  while (power < bytes / 2) power *= 2;  // power <= bytes <= 2 * power
  return round_up(bytes, power / 8);
}

CpuAllocator::~CpuAllocator() {
  empty_cache();
}

void* CpuAllocator::raw_allocate(std::size_t bytes) {
  const std::size_t size = block_size(bytes);
  if (size >= min_cached_bytes) {
    std::lock_guard lock(cache_mutex_);
    auto found = cache_.find(size);
    if (found != cache_.end() && !found->second.empty()) {
      void* ptr = found->second.back();
      found->second.pop_back();
      return ptr;
    }
  }
  void* ptr = std::aligned_alloc(alignment, size);
  TKF_CHECK(ptr != nullptr, "CpuAllocator: out of memory allocating ", bytes, " bytes");
  reserved_.add(static_cast<std::int64_t>(size));
  return ptr;
}

void CpuAllocator::raw_deallocate(void* ptr, std::size_t bytes) {
  const std::size_t size = block_size(bytes);
  if (size >= min_cached_bytes) {
    std::lock_guard lock(cache_mutex_);
    cache_[size].push_back(ptr);
    return;
  }
  std::free(ptr);
  reserved_.add(-static_cast<std::int64_t>(size));
}

void CpuAllocator::empty_cache() {
  std::lock_guard lock(cache_mutex_);
  for (auto& [size, blocks] : cache_) {
    for (void* ptr : blocks) std::free(ptr);
    reserved_.add(-static_cast<std::int64_t>(size * blocks.size()));
  }
  cache_.clear();
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
