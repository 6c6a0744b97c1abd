// Best-fit blocks with split and merge over segments: Note [block pool].
#include "topkformer/core/block_pool.h"

#include <algorithm>
#include <iterator>

#include "topkformer/core/error.h"

namespace topkformer {

namespace {
std::uintptr_t address(const void* ptr) {
  return reinterpret_cast<std::uintptr_t>(ptr);
}
}  // namespace

BlockPool::BlockPool(std::size_t alignment, std::size_t min_split)
    : alignment_(alignment), min_split_(std::max(min_split, alignment)) {
  TKF_CHECK(alignment > 0 && (alignment & (alignment - 1)) == 0,
            "BlockPool: the alignment must be a power of two, got ", alignment);
}

void BlockPool::insert_free(Blocks::iterator block) {
  block->second.free = true;
  free_.emplace(block->second.bytes, block->first);
}

void BlockPool::erase_free(Blocks::iterator block) {
  free_.erase({block->second.bytes, block->first});
  block->second.free = false;
}

void* BlockPool::take(std::size_t bytes, std::size_t largest) {
  const std::size_t size =
      (std::max<std::size_t>(bytes, 1) + alignment_ - 1) / alignment_ * alignment_;
  const auto fit = free_.lower_bound({size, 0});
  if (fit == free_.end() || fit->first > largest) return nullptr;
  const auto block = blocks_.find(fit->second);
  erase_free(block);
  const std::size_t rest = block->second.bytes - size;
  if (rest >= min_split_) {
    block->second.bytes = size;
    const auto tail = blocks_.emplace_hint(std::next(block), block->first + size,
                                           Block{rest, block->second.segment, false});
    insert_free(tail);
  }
  live_bytes_ += block->second.bytes;
  return reinterpret_cast<void*>(block->first);
}

void BlockPool::add_segment(void* base, std::size_t bytes) {
  TKF_CHECK(
      base != nullptr && bytes > 0 && address(base) % alignment_ == 0 && bytes % alignment_ == 0,
      "BlockPool: a segment must be non-empty and aligned to ", alignment_, " bytes");
  const auto [block, inserted] = blocks_.emplace(address(base), Block{bytes, address(base), false});
  TKF_CHECK(inserted, "BlockPool: segment at ", base, " added twice");
  insert_free(block);
  segments_.emplace(address(base), bytes);
  segment_bytes_ += bytes;
}

BlockPool::Blocks::iterator BlockPool::merge(Blocks::iterator block) {
  const auto next = std::next(block);
  if (next != blocks_.end() && next->second.free && next->second.segment == block->second.segment) {
    erase_free(next);
    erase_free(block);
    block->second.bytes += next->second.bytes;
    blocks_.erase(next);
    insert_free(block);
  }
  if (block != blocks_.begin()) {
    const auto previous = std::prev(block);
    if (previous->second.free && previous->second.segment == block->second.segment) {
      erase_free(previous);
      erase_free(block);
      previous->second.bytes += block->second.bytes;
      blocks_.erase(block);
      insert_free(previous);
      return previous;
    }
  }
  return block;
}

void BlockPool::give_back(void* ptr) {
  const auto block = blocks_.find(address(ptr));
  TKF_CHECK(block != blocks_.end() && !block->second.free, "BlockPool: ", ptr,
            " is not a live block of this pool");
  live_bytes_ -= block->second.bytes;
  insert_free(block);
  merge(block);
}

std::size_t BlockPool::block_bytes(const void* ptr) const {
  const auto block = blocks_.find(address(ptr));
  TKF_CHECK(block != blocks_.end() && !block->second.free, "BlockPool: ", ptr,
            " is not a live block of this pool");
  return block->second.bytes;
}

std::vector<BlockPool::Segment> BlockPool::remove_free_segments(std::size_t bytes) {
  // Wholly free segments are single free blocks at their segment's base.
  std::vector<Segment> whole;
  for (const auto& [base, size] : segments_) {
    const Block& block = blocks_.at(base);
    if (block.free && block.bytes == size) whole.push_back({reinterpret_cast<void*>(base), size});
  }
  std::stable_sort(whole.begin(), whole.end(),
                   [](const Segment& a, const Segment& b) { return a.bytes > b.bytes; });
  std::vector<Segment> removed;
  std::size_t removed_bytes = 0;
  for (const Segment& segment : whole) {
    if (removed_bytes >= bytes) break;
    const auto block = blocks_.find(address(segment.base));
    erase_free(block);
    blocks_.erase(block);
    segments_.erase(address(segment.base));
    segment_bytes_ -= segment.bytes;
    removed_bytes += segment.bytes;
    removed.push_back(segment);
  }
  return removed;
}

}  // namespace topkformer
