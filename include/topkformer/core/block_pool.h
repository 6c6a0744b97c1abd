// The bookkeeping of the caching allocators: segments held from the system,
// split into blocks handed out best-fit and merged again when freed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <vector>

namespace topkformer {

// Note [block pool]
// A segment is one piece of memory obtained from the system (mmap, cudaMalloc).
// It is covered by blocks that tile it exactly, each live (handed out) or free.
// A request takes the smallest free block that holds it (best fit, ties to the
// lower address) and splits it when the rest is at least `min_split`, so a
// large freed block can serve a smaller request and the rest stays free for
// the next; a smaller rest stays with the block, which is then larger than
// asked. A freed block merges with free neighbours in its segment, so a
// segment whose blocks are all free is one free block again and can go back
// to the system. The pool touches no memory and calls nothing: the allocator
// obtains and releases segments, the pool only keeps the books.
class BlockPool {
 public:
  struct Segment {
    void* base;
    std::size_t bytes;
  };

  // Block sizes are multiples of `alignment` (so every block is as aligned as
  // the segments are); rests smaller than `min_split` are not split off.
  BlockPool(std::size_t alignment, std::size_t min_split);

  // The block for `bytes` (rounded up to the alignment), or nullptr when no
  // free block is large enough, or when the best fit is larger than `largest`.
  void* take(std::size_t bytes, std::size_t largest = SIZE_MAX);
  // Adds a segment obtained from the system, as one free block.
  void add_segment(void* base, std::size_t bytes);
  // Frees the live block at `ptr` (from take) and merges it with its free
  // neighbours; throws Error when `ptr` is not a live block of this pool.
  void give_back(void* ptr);
  // Removes wholly free segments, largest first, until their bytes reach
  // `bytes` or none is left, and returns them for the caller to release.
  std::vector<Segment> remove_free_segments(std::size_t bytes);

  std::size_t segment_bytes() const { return segment_bytes_; }  // held from the system
  std::size_t live_bytes() const { return live_bytes_; }        // in blocks handed out
  std::size_t free_bytes() const { return segment_bytes_ - live_bytes_; }
  std::size_t segment_count() const { return segments_.size(); }
  std::size_t free_block_count() const { return free_.size(); }
  std::size_t live_block_count() const { return blocks_.size() - free_.size(); }
  // The size of the block `ptr` was handed out as (at least what was asked).
  std::size_t block_bytes(const void* ptr) const;

 private:
  struct Block {
    std::size_t bytes;
    std::uintptr_t segment;  // the base of the segment the block lies in
    bool free;
  };
  using Blocks = std::map<std::uintptr_t, Block>;

  void insert_free(Blocks::iterator block);
  void erase_free(Blocks::iterator block);
  // Merges `block` (free) into its free neighbours; returns the merged block.
  Blocks::iterator merge(Blocks::iterator block);

  std::size_t alignment_;
  std::size_t min_split_;
  Blocks blocks_;                                          // every block, by address
  std::set<std::pair<std::size_t, std::uintptr_t>> free_;  // (bytes, address) of free blocks
  std::map<std::uintptr_t, std::size_t> segments_;         // base -> bytes
  std::size_t segment_bytes_ = 0;
  std::size_t live_bytes_ = 0;
};

}  // namespace topkformer
