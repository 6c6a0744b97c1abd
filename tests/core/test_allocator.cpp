// The CPU allocator's statistics, alignment and cache. Other tests may hold
// memory, so byte counts are compared as deltas from a baseline taken here.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "topkformer/core/allocator.h"
#include "topkformer/core/error.h"
#include "topkformer/core/tensor.h"

namespace topkformer {
namespace {

CachingAllocator& cpu_allocator() {
  return dynamic_cast<CachingAllocator&>(allocator_for(Device::cpu()));
}

constexpr std::int64_t mib = std::int64_t{1} << 20;

TEST(CpuAllocator, CurrentAndPeakBytesFollowAllocationsAndFrees) {
  Allocator& allocator = cpu_allocator();
  const std::int64_t base = allocator.current_bytes();
  allocator.reset_peak();
  EXPECT_EQ(allocator.peak_bytes(), base);
  {
    const Tensor a = Tensor::empty({1000}, DType::f32);  // 4000 bytes
    EXPECT_EQ(allocator.current_bytes() - base, 4000);
    EXPECT_EQ(allocator.peak_bytes() - base, 4000);
    {
      const Tensor b = Tensor::empty({250}, DType::f64);  // 2000 bytes
      EXPECT_EQ(allocator.current_bytes() - base, 6000);
      EXPECT_EQ(allocator.peak_bytes() - base, 6000);
    }
    EXPECT_EQ(allocator.current_bytes() - base, 4000);
    EXPECT_EQ(allocator.peak_bytes() - base, 6000);        // the peak stays after a free
    const Tensor c = Tensor::empty({3, 100}, DType::i32);  // 1200 bytes, below the peak
    EXPECT_EQ(allocator.current_bytes() - base, 5200);
    EXPECT_EQ(allocator.peak_bytes() - base, 6000);
  }
  EXPECT_EQ(allocator.current_bytes(), base);
  EXPECT_EQ(allocator.peak_bytes() - base, 6000);
  allocator.reset_peak();
  EXPECT_EQ(allocator.peak_bytes(), base);
}

// Cached sizes (>= 1 MiB) are counted as requested, not as their block size.
TEST(CpuAllocator, LargeAllocationsCountRequestedBytes) {
  Allocator& allocator = cpu_allocator();
  const std::int64_t base = allocator.current_bytes();
  allocator.reset_peak();
  {
    const Tensor big = Tensor::empty({300001}, DType::f32);  // 1200004 bytes
    EXPECT_EQ(allocator.current_bytes() - base, 1200004);
  }
  EXPECT_EQ(allocator.current_bytes(), base);
  EXPECT_EQ(allocator.peak_bytes() - base, 1200004);
}

TEST(CpuAllocator, AllocationCountIncrementsPerStorage) {
  Allocator& allocator = cpu_allocator();
  const std::int64_t before = allocator.allocation_count();
  const Tensor a = Tensor::empty({7}, DType::f32);
  const Tensor b = Tensor::empty({2 * mib}, DType::u8);
  EXPECT_EQ(allocator.allocation_count() - before, 2);
  const Tensor nothing = Tensor::empty({0, 5}, DType::f32);  // zero bytes count nothing
  EXPECT_EQ(allocator.allocation_count() - before, 2);
  const Tensor copy = a.clone();
  EXPECT_EQ(allocator.allocation_count() - before, 3);
  allocator.reset_counters();
  EXPECT_EQ(allocator.allocation_count(), 0);
}

TEST(CpuAllocator, ViewsAllocateNothing) {
  Allocator& allocator = cpu_allocator();
  const Tensor base = Tensor::zeros({4, 6, 8}, DType::f32);
  const std::int64_t bytes = allocator.current_bytes(), count = allocator.allocation_count();
  const Tensor views[] = {
      base.narrow(1, 1, 3), base.slice(2, 0, 8, 2),  base.select(0, 2),
      base.transpose(0, 2), base.permute({2, 0, 1}), base.unsqueeze(1),
      base.view({24, 8}),   base.reshape({-1}),      base.unsqueeze(0).expand({3, 4, 6, 8}),
      base.contiguous()};
  for (const Tensor& view : views) EXPECT_TRUE(view.shares_storage_with(base));
  EXPECT_EQ(allocator.current_bytes(), bytes);
  EXPECT_EQ(allocator.allocation_count(), count);
}

bool is_aligned(const Tensor& t) {
  return reinterpret_cast<std::uintptr_t>(t.raw_data()) % CpuAllocator::alignment == 0;
}

TEST(CpuAllocator, DataIsAlignedTo64BytesForSmallAndCachedSizes) {
  EXPECT_EQ(CpuAllocator::alignment, 64u);
  for (const std::int64_t bytes : {std::int64_t{1}, std::int64_t{3}, std::int64_t{17},
                                   std::int64_t{100}, mib - 1, mib, mib + 3, 5 * mib + 77}) {
    const Tensor t = Tensor::empty({bytes}, DType::u8);
    EXPECT_TRUE(is_aligned(t)) << bytes << " bytes";
  }
  // A cached block handed out a second time is still aligned.
  const void* first = nullptr;
  {
    const Tensor t = Tensor::empty({3 * mib + 5}, DType::u8);
    first = t.raw_data();
  }
  const Tensor again = Tensor::empty({3 * mib + 5}, DType::u8);
  EXPECT_TRUE(is_aligned(again));
  EXPECT_EQ(again.raw_data(), first) << "a freed large block should be reused";
}

TEST(CpuAllocator, ReservedBytesCoverCurrentBytes) {
  Allocator& allocator = cpu_allocator();
  EXPECT_GE(allocator.reserved_bytes(), allocator.current_bytes());
  const Tensor small = Tensor::empty({1001}, DType::u8);
  const Tensor large = Tensor::empty({3 * mib + 1}, DType::u8);
  EXPECT_GE(allocator.reserved_bytes(), allocator.current_bytes());
  EXPECT_EQ(allocator.stats().reserved_bytes, allocator.reserved_bytes());
  EXPECT_EQ(allocator.stats().current_bytes, allocator.current_bytes());
}

// A freed large block stays reserved (cached) until empty_cache(); reusing it
// reserves nothing new.
TEST(CpuAllocator, EmptyCacheReleasesFreedLargeBlocks) {
  CachingAllocator& allocator = cpu_allocator();
  const std::size_t bytes = 4 * mib + 20;
  const auto block = static_cast<std::int64_t>(allocator.segment_bytes(bytes));
  std::int64_t reserved_with_block = 0;
  {
    const Tensor big = Tensor::empty({std::int64_t(bytes)}, DType::u8);
    reserved_with_block = allocator.reserved_bytes();
  }
  EXPECT_EQ(allocator.reserved_bytes(), reserved_with_block);  // cached, not released
  {
    const Tensor reused = Tensor::empty({std::int64_t(bytes)}, DType::u8);
    EXPECT_EQ(allocator.reserved_bytes(), reserved_with_block);
  }
  allocator.empty_cache();
  EXPECT_LE(allocator.reserved_bytes(), reserved_with_block - block);
  EXPECT_GE(allocator.reserved_bytes(), allocator.current_bytes());
}

// Segments: at least the request, a multiple of the alignment, and less than
// one granule (64 KiB) of slack.
TEST(CpuAllocator, SegmentSizeRoundsUpWithBoundedSlack) {
  const CachingAllocator& allocator = cpu_allocator();
  std::vector<std::size_t> sizes = {std::size_t(mib),         std::size_t(mib) + 1,
                                    2 * std::size_t(mib) - 1, 2 * std::size_t(mib) + 1,
                                    3 * std::size_t(mib) + 5, (std::size_t{1} << 30) + 12345};
  // Plus a deterministic spread of sizes from 1 MiB to 1 GiB.
  for (std::size_t s = std::size_t(mib) + 7; s < (std::size_t{1} << 30); s = s * 5 / 4 + 13)
    sizes.push_back(s);
  for (const std::size_t bytes : sizes) {
    const std::size_t segment = allocator.segment_bytes(bytes);
    EXPECT_GE(segment, bytes) << bytes;
    EXPECT_EQ(segment % CpuAllocator::alignment, 0u) << bytes;
    EXPECT_LT(segment - bytes, CpuAllocator::segment_granule) << bytes << " -> " << segment;
    EXPECT_EQ(segment % CpuAllocator::segment_granule, 0u) << bytes;
  }
}

// Reserved bytes have a peak like current bytes; reset_peak() restarts both.
TEST(CpuAllocator, PeakReservedBytesCoverReservedBytes) {
  Allocator& allocator = cpu_allocator();
  allocator.reset_peak();
  EXPECT_EQ(allocator.peak_reserved_bytes(), allocator.reserved_bytes());
  const std::int64_t reserved = allocator.reserved_bytes();
  { const Tensor big = Tensor::empty({6 * mib + 3}, DType::u8); }
  EXPECT_GE(allocator.peak_reserved_bytes() - reserved, 6 * mib + 3);
  EXPECT_GE(allocator.peak_reserved_bytes(), allocator.reserved_bytes());
  EXPECT_GE(allocator.peak_reserved_bytes(), allocator.peak_bytes());
  EXPECT_EQ(allocator.stats().peak_reserved_bytes, allocator.peak_reserved_bytes());
  allocator.empty_cache();
  EXPECT_GE(allocator.peak_reserved_bytes() - reserved, 6 * mib + 3);  // the peak stays
  allocator.reset_peak();
  EXPECT_EQ(allocator.peak_reserved_bytes(), allocator.reserved_bytes());
}

}  // namespace
}  // namespace topkformer
