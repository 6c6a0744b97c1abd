// The block pool's split and merge, and the caching allocator's policy (best
// fit, the cache bound, out of memory), on counters: Note [caching allocator].
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <vector>

#include "topkformer/attention/functional.h"
#include "topkformer/autograd/tape.h"
#include "topkformer/core/allocator.h"
#include "topkformer/core/block_pool.h"
#include "topkformer/core/error.h"
#include "topkformer/core/rng.h"
#include "topkformer/core/tensor.h"

namespace topkformer {
namespace {

constexpr std::size_t kib = 1024;
constexpr std::size_t mib = std::size_t{1} << 20;

// Addresses for segments: the pool never touches memory, so one arena's
// offsets serve as segments.
struct Arena {
  std::vector<std::uint64_t> words = std::vector<std::uint64_t>(64 * mib / 8 + 64);
  std::uintptr_t base() const {
    const auto start = reinterpret_cast<std::uintptr_t>(words.data());
    return (start + 511) / 512 * 512;
  }
  void* at(std::size_t offset) const { return reinterpret_cast<void*>(base() + offset); }
};

// Every book of the pool adds up, and the live blocks handed out never overlap.
void expect_books_balance(const BlockPool& pool, const std::map<void*, std::size_t>& live) {
  std::size_t live_bytes = 0;
  std::uintptr_t end = 0;
  for (const auto& [ptr, asked] : live) {
    const std::size_t bytes = pool.block_bytes(ptr);
    EXPECT_GE(bytes, asked);
    EXPECT_GE(reinterpret_cast<std::uintptr_t>(ptr), end) << "live blocks overlap";
    end = reinterpret_cast<std::uintptr_t>(ptr) + bytes;
    live_bytes += bytes;
  }
  EXPECT_EQ(pool.live_bytes(), live_bytes);
  EXPECT_EQ(pool.live_block_count(), live.size());
  EXPECT_EQ(pool.live_bytes() + pool.free_bytes(), pool.segment_bytes());
}

TEST(BlockPool, TakesTheBestFitAndSplitsOffTheRest) {
  Arena arena;
  BlockPool pool(512, mib);
  pool.add_segment(arena.at(0), 8 * mib);
  pool.add_segment(arena.at(16 * mib), 3 * mib);
  void* a = pool.take(2 * mib);  // best fit: the 3 MiB segment, split 2 + 1
  EXPECT_EQ(a, arena.at(16 * mib));
  EXPECT_EQ(pool.block_bytes(a), 2 * mib);
  EXPECT_EQ(pool.free_block_count(), 2u);
  void* b = pool.take(mib);  // the 1 MiB rest fits exactly
  EXPECT_EQ(b, arena.at(18 * mib));
  void* c = pool.take(5 * mib + 1);  // from the 8 MiB segment; its rest (< 3 MiB) is split off
  EXPECT_EQ(c, arena.at(0));
  EXPECT_EQ(pool.block_bytes(c), 5 * mib + 512);
  EXPECT_EQ(pool.take(3 * mib), nullptr);  // the rest is 3 MiB - 512: too small
  EXPECT_EQ(pool.live_bytes(), 8 * mib + 512);
  EXPECT_EQ(pool.free_bytes(), 3 * mib - 512);
}

TEST(BlockPool, ARestBelowMinSplitStaysWithTheBlock) {
  Arena arena;
  BlockPool pool(512, mib);
  pool.add_segment(arena.at(0), 4 * mib);
  void* a = pool.take(3 * mib + 100);
  EXPECT_EQ(pool.block_bytes(a), 4 * mib) << "a rest under 1 MiB is not split off";
  EXPECT_EQ(pool.free_bytes(), 0u);
  pool.give_back(a);
  EXPECT_EQ(pool.free_bytes(), 4 * mib);
  EXPECT_EQ(pool.free_block_count(), 1u);
}

TEST(BlockPool, FreedNeighboursMergeIntoOneBlock) {
  Arena arena;
  BlockPool pool(512, 512);
  pool.add_segment(arena.at(0), 4 * kib);
  std::vector<void*> blocks;
  for (int i = 0; i < 8; ++i) blocks.push_back(pool.take(512));
  EXPECT_EQ(pool.free_block_count(), 0u);
  // Free every other block, then the rest: each free merges with both neighbours.
  for (int i = 0; i < 8; i += 2) pool.give_back(blocks[i]);
  EXPECT_EQ(pool.free_block_count(), 4u);
  for (int i = 1; i < 8; i += 2) pool.give_back(blocks[i]);
  EXPECT_EQ(pool.free_block_count(), 1u);
  EXPECT_EQ(pool.take(4 * kib), arena.at(0)) << "merged back into the whole segment";
}

TEST(BlockPool, BlocksOfDifferentSegmentsNeverMerge) {
  Arena arena;
  BlockPool pool(512, 512);
  // Adjacent in memory, but two segments: the system may not take them back as one.
  pool.add_segment(arena.at(0), 2 * kib);
  pool.add_segment(arena.at(2 * kib), 2 * kib);
  EXPECT_EQ(pool.free_block_count(), 2u);
  EXPECT_EQ(pool.take(4 * kib), nullptr);
  const std::vector<BlockPool::Segment> removed = pool.remove_free_segments(SIZE_MAX);
  EXPECT_EQ(removed.size(), 2u);
  EXPECT_EQ(pool.segment_bytes(), 0u);
}

TEST(BlockPool, OnlyWhollyFreeSegmentsAreRemovedLargestFirst) {
  Arena arena;
  BlockPool pool(512, 512);
  pool.add_segment(arena.at(0), 2 * mib);
  pool.add_segment(arena.at(4 * mib), 6 * mib);
  pool.add_segment(arena.at(12 * mib), 3 * mib);
  void* held = pool.take(3 * mib);  // best fit: the whole 3 MiB segment
  EXPECT_EQ(held, arena.at(12 * mib));
  std::vector<BlockPool::Segment> removed = pool.remove_free_segments(1);
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].base, arena.at(4 * mib));
  EXPECT_EQ(removed[0].bytes, 6 * mib);
  removed = pool.remove_free_segments(SIZE_MAX);
  ASSERT_EQ(removed.size(), 1u);  // the 3 MiB one holds a live block
  EXPECT_EQ(removed[0].base, arena.at(0));
  EXPECT_EQ(pool.segment_bytes(), 3 * mib);
  pool.give_back(held);
  EXPECT_EQ(pool.remove_free_segments(SIZE_MAX).size(), 1u);
  EXPECT_EQ(pool.segment_count(), 0u);
}

TEST(BlockPool, UnknownOrTwiceFreedBlocksAreErrors) {
  Arena arena;
  BlockPool pool(512, 512);
  pool.add_segment(arena.at(0), 4 * kib);
  void* a = pool.take(1000);
  EXPECT_THROW(pool.give_back(arena.at(512)), Error);  // inside a block, not its start
  pool.give_back(a);
  EXPECT_THROW(pool.give_back(a), Error);
  EXPECT_THROW(pool.add_segment(arena.at(0), 4 * kib), Error);
  EXPECT_THROW(pool.add_segment(arena.at(100), 4 * kib), Error);  // misaligned
}

// A long deterministic sequence of takes and frees of many sizes: after every
// step the books balance, and once everything is freed each segment is one
// free block again.
TEST(BlockPool, SplitAndMergeKeepTheBooksExactOverManySizes) {
  Arena arena;
  BlockPool pool(512, 4 * kib);
  for (std::size_t offset = 0; offset < 64 * mib; offset += 8 * mib) {
    pool.add_segment(arena.at(offset), 8 * mib);
  }
  std::map<void*, std::size_t> live;
  std::uint64_t state = 12345;
  auto next = [&state] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return state >> 33;
  };
  for (int step = 0; step < 4000; ++step) {
    if (live.empty() || next() % 3 != 0) {
      const std::size_t bytes = 1 + next() % (3 * mib);
      if (void* ptr = pool.take(bytes)) live.emplace(ptr, bytes);
    } else {
      auto victim = live.begin();
      std::advance(victim, static_cast<std::ptrdiff_t>(next() % live.size()));
      pool.give_back(victim->first);
      live.erase(victim);
    }
    if (step % 97 == 0) expect_books_balance(pool, live);
  }
  expect_books_balance(pool, live);
  for (const auto& entry : live) pool.give_back(entry.first);
  EXPECT_EQ(pool.live_bytes(), 0u);
  EXPECT_EQ(pool.free_block_count(), pool.segment_count());
  EXPECT_EQ(pool.remove_free_segments(SIZE_MAX).size(), 8u);
  EXPECT_EQ(pool.segment_bytes(), 0u);
}

// The policy of Note [caching allocator] over a pretend system that counts
// what it hands out and can be told to refuse.
class CountingAllocator final : public CachingAllocator {
 public:
  CountingAllocator() : CachingAllocator(512, mib, 2 * mib, 64 * kib) {}
  Device device() const override { return Device::cpu(); }
  ~CountingAllocator() override { empty_cache(); }

  std::int64_t acquired = 0;  // segments obtained
  std::int64_t released = 0;  // segments given back
  std::int64_t refusals = 0;  // acquire calls still to refuse

 protected:
  void* acquire(std::size_t bytes) override {
    if (refusals > 0) {
      --refusals;
      return nullptr;
    }
    ++acquired;
    return std::aligned_alloc(512, bytes);
  }
  void release(const std::vector<BlockPool::Segment>& segments) override {
    for (const BlockPool::Segment& segment : segments) {
      std::free(segment.base);
      ++released;
    }
  }
  std::string out_of_memory_message(std::size_t bytes, std::size_t segment) const override {
    return detail::concat("pretend out of memory: ", bytes, " bytes, segment ", segment);
  }
};

TEST(CachingAllocator, AFreedLargeBlockServesASmallerRequest) {
  CountingAllocator allocator;
  void* big = allocator.allocate(40 * mib);
  EXPECT_EQ(allocator.reserved_bytes(), 40 * std::int64_t(mib));
  allocator.deallocate(big, 40 * mib);
  void* smaller = allocator.allocate(25 * mib + 3);
  void* rest = allocator.allocate(10 * mib);
  EXPECT_EQ(smaller, big);
  EXPECT_EQ(allocator.acquired, 1) << "both served from the freed block";
  EXPECT_EQ(allocator.reserved_bytes(), 40 * std::int64_t(mib));
  EXPECT_EQ(allocator.current_bytes(), 35 * std::int64_t(mib) + 3) << "requested bytes, exactly";
  allocator.deallocate(rest, 10 * mib);
  allocator.deallocate(smaller, 25 * mib + 3);
  const CachingAllocator::CacheStats stats = allocator.cache_stats();
  EXPECT_EQ(stats.segments, 1);
  EXPECT_EQ(stats.free_blocks, 1) << "merged back into one block";
  EXPECT_EQ(stats.free_bytes, 40 * std::int64_t(mib));
  allocator.empty_cache();
  EXPECT_EQ(allocator.reserved_bytes(), 0);
  EXPECT_EQ(allocator.released, 1);
}

TEST(CachingAllocator, SmallRequestsShareSegments) {
  CountingAllocator allocator;
  std::vector<void*> small;
  for (int i = 0; i < 64; ++i) small.push_back(allocator.allocate(1000));
  EXPECT_EQ(allocator.acquired, 1) << "64 blocks of 1024 bytes in one 2 MiB segment";
  EXPECT_EQ(allocator.reserved_bytes(), 2 * std::int64_t(mib));
  EXPECT_EQ(allocator.current_bytes(), 64000);
  CachingAllocator::CacheStats stats = allocator.cache_stats();
  EXPECT_EQ(stats.block_bytes, 64 * 1024);
  EXPECT_EQ(stats.block_bytes + stats.free_bytes, stats.segment_bytes);
  for (void* ptr : small) allocator.deallocate(ptr, 1000);
  stats = allocator.cache_stats();
  EXPECT_EQ(stats.free_blocks, 1);
  EXPECT_EQ(stats.block_bytes, 0);
}

// Chunked attention's causal chunks grow one by one: chunk i needs i units.
// Cached by exact size, each would keep its own block (the sum of all sizes);
// split and merged under the bound, reserved stays within 1.25x the live peak.
TEST(CachingAllocator, GrowingChunksReserveWithinTheBoundOfTheLivePeak) {
  CountingAllocator allocator;
  const std::size_t unit = 3 * mib + 4096;
  void* weights = allocator.allocate(20 * mib);
  std::int64_t acquired = 0;
  for (int pass = 0; pass < 4; ++pass) {
    for (std::size_t chunk = 1; chunk <= 16; ++chunk) {
      void* scores = allocator.allocate(chunk * unit);
      void* probabilities = allocator.allocate(chunk * unit);
      allocator.deallocate(scores, chunk * unit);
      void* output = allocator.allocate(2 * mib);
      allocator.deallocate(probabilities, chunk * unit);
      allocator.deallocate(output, 2 * mib);
    }
    // Passes repeat the same sizes: once the cache has settled (the second
    // pass splits what the first left), it serves them all, with no new segment.
    if (pass >= 2) {
      EXPECT_EQ(allocator.cache_stats().segments_acquired, acquired) << pass;
    }
    acquired = allocator.cache_stats().segments_acquired;
  }
  const auto live_peak = double(allocator.peak_bytes());
  EXPECT_EQ(allocator.peak_bytes(), std::int64_t(20 * mib + 32 * unit));
  EXPECT_LE(double(allocator.peak_reserved_bytes()), 1.25 * live_peak)
      << "reserved " << allocator.peak_reserved_bytes() << " for a live peak of " << live_peak;
  allocator.deallocate(weights, 20 * mib);
  EXPECT_EQ(allocator.current_bytes(), 0);
  const CachingAllocator::CacheStats stats = allocator.cache_stats();
  EXPECT_EQ(stats.block_bytes, 0);
  EXPECT_EQ(stats.free_blocks, stats.segments) << "every segment merged back whole";
  EXPECT_EQ(stats.segment_bytes, allocator.reserved_bytes());
}

TEST(CachingAllocator, OutOfMemoryReleasesTheCacheRetriesAndThenThrows) {
  CountingAllocator allocator;
  void* cached = allocator.allocate(8 * mib);
  allocator.deallocate(cached, 8 * mib);
  allocator.refusals = 1;  // the first try fails, the retry after releasing the cache works
  void* big = allocator.allocate(16 * mib);
  EXPECT_EQ(allocator.released, 1) << "the cached 8 MiB went back first";
  EXPECT_EQ(allocator.reserved_bytes(), 16 * std::int64_t(mib));
  allocator.refusals = 2;
  try {
    allocator.allocate(32 * mib);
    ADD_FAILURE() << "expected an out-of-memory error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("pretend out of memory: 33554432 bytes"),
              std::string::npos)
        << error.what();
  }
  EXPECT_EQ(allocator.current_bytes(), 16 * std::int64_t(mib)) << "the failure counted nothing";
  void* after = allocator.allocate(mib);  // still usable
  allocator.deallocate(after, mib);
  allocator.deallocate(big, 16 * mib);
}

// The real thing: a causal chunked attention forward and backward pass (chunk
// buffers of many sizes) on the CPU allocator reserves within 1.25x its peak.
TEST(CachingAllocator, ChunkedAttentionReservesWithinTheBoundOfItsLivePeak) {
  Allocator& allocator = allocator_for(Device::cpu());
  Generator generator(7);
  Tensor q = Tensor::randn({1, 2, 2048, 32}, generator);
  Tensor k = Tensor::randn({1, 2, 2048, 32}, generator);
  Tensor v = Tensor::randn({1, 2, 2048, 32}, generator);
  for (Tensor* input : {&q, &k, &v}) input->set_requires_grad(true);
  attention::AttentionContext context;
  context.causal = true;
  context.scale = 0.2;
  allocator.empty_cache();
  allocator.reset_peak();
  for (int pass = 0; pass < 2; ++pass) {
    const Tensor out = attention::chunked_attention(q, k, v, context, 256);
    autograd::backward({out}, {Tensor::ones(out.shape())});
  }
  EXPECT_LE(double(allocator.peak_reserved_bytes()), 1.25 * double(allocator.peak_bytes()))
      << "reserved " << allocator.peak_reserved_bytes() << " for a live peak of "
      << allocator.peak_bytes();
}

}  // namespace
}  // namespace topkformer
