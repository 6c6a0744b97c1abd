// Top-k attention scores on the GPU without the score matrix: a fused kernel
// keeps a running top-k per query in shared memory; sizes beyond shared
// memory take the dense path, as on the CPU. See Note [topk_scores merge].
#include <cuda_pipeline_primitives.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "cuda/check.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/launch.h"
#include "kernels/dispatch.h"
#include "kernels/topk_scores.h"

// Note [topk_scores merge]
// ~~~~~~~~~~~~~~~~~~~~~~~~
// A block takes a tile of BQ queries of one group (BQ = 64, or 32 where 64 do
// not fit in shared memory; 4 BQ threads) and walks the keys in blocks of 64,
// only those the tile can see: it stops at the padding length and, for causal
// masks, at the last row's causal limit, so fully masked key blocks are never
// touched. Per key block:
//   1. The keys are already in shared memory: each block's keys are copied
//      with cp.async while the previous block is scored (two buffers).
//   2. Each thread computes a 4 x 4 register tile of scores (queries 4 ty ..
//      4 ty + 3, keys tx, tx + 16, tx + 32, tx + 48) in f32/f64 FMAs, the
//      dimensions in ascending order, then scales it: deterministic.
//   3. A score survives if its key is visible to the query (the causal and
//      padding masks, applied here) and it beats the query's threshold, the
//      k-th best entry so far: keys arrive in ascending order, so a later key
//      that ties the threshold loses (ties go to the lower index) and `<=`
//      rejects it. Survivors are appended to the query's candidate buffer
//      (one shared atomicAdd per half-warp and query). Most scores fail the
//      threshold, and a warp in which none survives pays one vote.
//   4. A query whose buffer may not hold another block's survivors merges:
//      its warp sorts the candidates (bitonic), takes the better of each slot
//      of the sorted top list and of the reversed candidates (which keeps the
//      best K2 of both as a bitonic sequence) and bitonic-merges that back
//      into the sorted top list. The threshold is its k-th entry.
// At the end every query merges what is left and the block writes the first k
// entries of each top list: sorted by (score descending, key ascending), with
// NaN above everything as topk_rows orders them. Slots that no key reached
// (the query sees fewer than k keys) get -inf and index 0. The candidates'
// order in a buffer depends on scheduling, but each merge selects by a strict
// total order, so the result does not: it is deterministic.

// Note [topk_scores shared memory]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Shared memory per block: BQ (K2 + 128) entries (K2 = k rounded up to a
// power of 2; an entry is 8 bytes for f32, 16 for f64), the query tile BQ x d
// and two key buffers 64 x (d + 4) of T (d rounded up to a multiple of 4).
// For f32, d = 64 and k = 128 that is 178 KiB (BQ = 64); d = 128 still fits
// an H100's 227 KiB, k = 256 with BQ = 32. Sizes beyond the device's limit (large d or k) take the
// dense path instead: topk_scores_by_blocks over this backend's gemm,
// fill_masked and topk_rows, chunk_rows queries at a time, as on the CPU.

namespace topkformer::kernels {

namespace {

constexpr int key_block = 64;    // keys per step
constexpr int key_threads = 16;  // threads across a tile's keys, 4 keys each
constexpr int tile_queries = 4;  // queries per thread
// Candidate slots per query: two steps' worth, so that a merge is due only
// after at least 64 survivors. A power of 2 (the candidates are sorted).
constexpr int candidate_slots = 2 * key_block;
constexpr unsigned full_warp = 0xffffffffu;
// The index of an empty slot: sorts after every key (indices are < Lk < 2^31 - 1).
constexpr int no_key = std::numeric_limits<int>::max();

template <typename T>
struct alignas(2 * sizeof(T)) Entry {
  T score;
  int index;
};

// topk_rows' strict order: larger first, NaN above everything, ties to the lower index.
template <typename T>
__device__ bool better(const Entry<T>& a, const Entry<T>& b) {
  const bool nan_a = isnan(a.score), nan_b = isnan(b.score);
  if (nan_a != nan_b) return nan_a;
  if (!nan_a && a.score != b.score) return a.score > b.score;
  return a.index < b.index;
}

template <typename T>
__device__ Entry<T> empty_entry() {
  return {-std::numeric_limits<T>::infinity(), no_key};
}

// Puts the better of x[lo], x[hi] first (or last when !best_first).
template <typename T>
__device__ void order_pair(Entry<T>* x, int lo, int hi, bool best_first) {
  const Entry<T> a = x[lo], b = x[hi];
  if (best_first ? better(b, a) : better(a, b)) {
    x[lo] = b;
    x[hi] = a;
  }
}

// The compare-exchange pairs of one stage at stride h over n entries: pair p
// joins lo = the p-th index with bit h clear, and lo + h.
__device__ int pair_low(int p, int h) {
  return 2 * p - (p & (h - 1));
}

// Sorts x[0, n) best first (n a power of 2). Called by a whole warp.
template <typename T>
__device__ void warp_bitonic_sort(Entry<T>* x, int n, int lane) {
  for (int span = 2; span <= n; span <<= 1) {
    for (int h = span >> 1; h > 0; h >>= 1) {
      for (int p = lane; p < n / 2; p += 32) {
        const int lo = pair_low(p, h);
        // Runs of `span` alternate direction; the last run (all of x) is best first.
        order_pair(x, lo, lo + h, (lo & span) == 0);
      }
      __syncwarp();
    }
  }
}

// Sorts a bitonic x[0, n) best first (n a power of 2). Called by a whole warp.
template <typename T>
__device__ void warp_bitonic_merge(Entry<T>* x, int n, int lane) {
  for (int h = n >> 1; h > 0; h >>= 1) {
    for (int p = lane; p < n / 2; p += 32) {
      const int lo = pair_low(p, h);
      order_pair(x, lo, lo + h, true);
    }
    __syncwarp();
  }
}

// See Note [topk_scores merge].
// Merges a query's `count` candidates (top + top_slots) into its sorted top
// list top[0, top_slots): afterwards the list holds the best top_slots
// entries of both, sorted. Called by a whole warp.
template <typename T>
__device__ void merge_candidates(Entry<T>* top, int top_slots, int count, int lane) {
  Entry<T>* candidates = top + top_slots;
  int size = 1;
  while (size < count) size <<= 1;
  for (int i = count + lane; i < size; i += 32) candidates[i] = empty_entry<T>();
  __syncwarp();
  warp_bitonic_sort(candidates, size, lane);
  // The best of top[i] and the (top_slots - 1 - i)-th candidate over all i are
  // the best top_slots entries of both sorted lists, as a bitonic sequence.
  for (int i = lane; i < top_slots; i += 32) {
    const int j = top_slots - 1 - i;
    if (j < size && better(candidates[j], top[i])) top[i] = candidates[j];
  }
  __syncwarp();
  warp_bitonic_merge(top, top_slots, lane);
}

template <typename T>
__device__ void load4(const T* p, T (&out)[4]);
template <>
__device__ void load4<float>(const float* p, float (&out)[4]) {
  const float4 v = *reinterpret_cast<const float4*>(p);
  out[0] = v.x;
  out[1] = v.y;
  out[2] = v.z;
  out[3] = v.w;
}
template <>
__device__ void load4<double>(const double* p, double (&out)[4]) {
  const double2 a = reinterpret_cast<const double2*>(p)[0];
  const double2 b = reinterpret_cast<const double2*>(p)[1];
  out[0] = a.x;
  out[1] = a.y;
  out[2] = b.x;
  out[3] = b.y;
}

template <typename T>
struct Args {
  const T* q;                       // [G, Lq, d]
  const T* keys;                    // [G, Lk, d]
  const std::int64_t* key_lengths;  // [B], or null
  T* values;                        // [G, Lq, k]
  std::int32_t* indices;            // [G, Lq, k]
  std::int64_t groups, queries, keys_per_group, groups_per_item;
  std::int64_t causal_offset;  // clamped to [-Lq - 1, Lk]: no overflow below
  bool causal;
  T scale;
  int head_dim, k;
  int top_slots;       // K2: k rounded up to a power of 2
  int q_stride;        // d rounded up to a multiple of 4
  int key_stride;      // q_stride, or + 4: an odd number of 16-byte words
  std::int64_t tiles;  // query tiles per group
};

// Layout of a block's shared memory, in the order below.
template <typename T, int BQ>
struct SharedLayout {
  std::int64_t state_bytes, q_bytes, key_bytes, count_bytes;
  explicit SharedLayout(const Args<T>& a)
      : state_bytes(std::int64_t{BQ} * (a.top_slots + candidate_slots) * sizeof(Entry<T>)),
        q_bytes(std::int64_t{BQ} * a.q_stride * sizeof(T)),
        key_bytes(std::int64_t{2} * key_block * a.key_stride * sizeof(T)),
        count_bytes(std::int64_t{BQ} * sizeof(int)) {}
  std::int64_t total() const { return state_bytes + q_bytes + key_bytes + count_bytes; }
};

// See Note [topk_scores merge] and Note [topk_scores shared memory].
template <typename T, int BQ>
__global__ void __launch_bounds__(BQ * 4, 1) topk_scores_kernel(const Args<T> a) {
  constexpr int threads = BQ * 4, warps = threads / 32;
  static_assert(threads == (BQ / tile_queries) * key_threads && threads % 32 == 0);
  extern __shared__ __align__(16) unsigned char shared[];
  const int slots = a.top_slots + candidate_slots;
  auto* state = reinterpret_cast<Entry<T>*>(shared);  // per query: top list, then candidates
  T* q_tile = reinterpret_cast<T*>(state + BQ * slots);
  T* key_tiles = q_tile + BQ * a.q_stride;
  int* counts = reinterpret_cast<int*>(key_tiles + 2 * key_block * a.key_stride);

  // Causal tiles of late queries see the most keys: they run first.
  const std::int64_t g = blockIdx.x % a.groups;
  std::int64_t tile = blockIdx.x / a.groups;
  if (a.causal) tile = a.tiles - 1 - tile;
  const std::int64_t first_query = tile * BQ;
  const int rows = static_cast<int>(std::min(std::int64_t{BQ}, a.queries - first_query));
  std::int64_t length = a.keys_per_group;
  if (a.key_lengths != nullptr) {
    length = std::max(std::int64_t{0}, std::min(length, a.key_lengths[g / a.groups_per_item]));
  }
  // The keys query `query` sees: [0, visible(query)).
  const auto visible = [&](std::int64_t query) -> int {
    std::int64_t v = length;
    if (a.causal) v = std::max(std::int64_t{0}, std::min(v, query + a.causal_offset + 1));
    return static_cast<int>(v);
  };
  const int key_end = visible(first_query + rows - 1);  // the most any row of the tile sees
  const int key_blocks = (key_end + key_block - 1) / key_block;

  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int tx = tid % key_threads, ty = tid / key_threads;
  const int d = a.head_dim;
  const T* group_keys = a.keys + g * a.keys_per_group * d;

  // Queues the copy of key block `b` into buffer b % 2; rows past key_end
  // become zeros. Row by row, lanes along d: coalesced.
  const auto stage_keys = [&](int b) {
    T* buffer = key_tiles + (b % 2) * key_block * a.key_stride;
    for (int row = warp; row < key_block; row += warps) {
      const int key = b * key_block + row;
      T* dst = buffer + row * a.key_stride;
      if (key < key_end) {
        const T* src = group_keys + static_cast<std::int64_t>(key) * d;
        for (int c = lane; c < d; c += 32) __pipeline_memcpy_async(dst + c, src + c, sizeof(T));
      } else {
        for (int c = lane; c < d; c += 32) dst[c] = T(0);
      }
    }
  };
  if (key_blocks > 0) stage_keys(0);
  __pipeline_commit();

  // The query tile (zeros past the last query and in the padding of d), the
  // zero padding columns of both key buffers, empty top lists.
  for (int row = warp; row < BQ; row += warps) {
    T* dst = q_tile + row * a.q_stride;
    if (row < rows) {
      const T* src = a.q + (g * a.queries + first_query + row) * d;
      for (int c = lane; c < a.q_stride; c += 32) dst[c] = c < d ? src[c] : T(0);
    } else {
      for (int c = lane; c < a.q_stride; c += 32) dst[c] = T(0);
    }
  }
  for (int row = warp; row < 2 * key_block; row += warps) {
    for (int c = d + lane; c < a.q_stride; c += 32) key_tiles[row * a.key_stride + c] = T(0);
  }
  for (int i = tid; i < BQ * slots; i += threads) state[i] = empty_entry<T>();
  for (int r = tid; r < BQ; r += threads) counts[r] = 0;

  int limit[tile_queries];  // keys visible to this thread's queries; 0 past the last query
  for (int i = 0; i < tile_queries; ++i) {
    const int r = ty * tile_queries + i;
    limit[i] = r < rows ? visible(first_query + r) : 0;
  }
  const unsigned half_warp = lane < 16 ? 0x0000ffffu : 0xffff0000u;  // lanes sharing ty
  const unsigned lanes_below = (1u << lane) - 1;

  for (int b = 0; b < key_blocks; ++b) {
    if (b + 1 < key_blocks) stage_keys(b + 1);
    __pipeline_commit();
    __pipeline_wait_prior(1);  // this thread's copies of block b have landed
    __syncthreads();           // everyone's have, and the last merges are done

    T acc[tile_queries][4] = {};
    const T* q_rows = q_tile + ty * tile_queries * a.q_stride;
    const T* key_rows = key_tiles + (b % 2) * key_block * a.key_stride + tx * a.key_stride;
#pragma unroll 2
    for (int c = 0; c < a.q_stride; c += 4) {
      T qv[tile_queries][4], kv[4][4];
#pragma unroll
      for (int i = 0; i < tile_queries; ++i) load4(q_rows + i * a.q_stride + c, qv[i]);
#pragma unroll
      for (int j = 0; j < 4; ++j) load4(key_rows + j * key_threads * a.key_stride + c, kv[j]);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
#pragma unroll
        for (int i = 0; i < tile_queries; ++i) {
#pragma unroll
          for (int j = 0; j < 4; ++j) acc[i][j] = fma(qv[i][e], kv[j][e], acc[i][j]);
        }
      }
    }

#pragma unroll
    for (int i = 0; i < tile_queries; ++i) {
      const int r = ty * tile_queries + i;
      Entry<T>* top = state + r * slots;
      // NaN while fewer than k keys are in: then `!(score <= threshold)` takes all.
      const Entry<T> kth = top[a.k - 1];
      const T threshold = kth.index == no_key ? std::numeric_limits<T>::quiet_NaN() : kth.score;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int key = b * key_block + tx + j * key_threads;
        const T score = a.scale * acc[i][j];
        const bool take = key < limit[i] && !(score <= threshold);
        const unsigned taken = __ballot_sync(full_warp, take);
        if (taken != 0) {
          // One atomic per half-warp (one query); lanes fill their slots in lane order.
          const unsigned mine = taken & half_warp;
          const int leader = __ffs(mine) - 1;
          int base = 0;
          if (lane == leader) base = atomicAdd(&counts[r], __popc(mine));
          base = __shfl_sync(full_warp, base, leader < 0 ? lane : leader);
          if (take) top[a.top_slots + base + __popc(mine & lanes_below)] = {score, key};
        }
      }
    }
    __syncthreads();

    // Each block adds at most key_block candidates to a query: merge the
    // queries that might overflow, and every query after the last block.
    const bool last = b + 1 == key_blocks;
    for (int r = warp; r < BQ; r += warps) {
      const int count = counts[r];
      if (count > candidate_slots - key_block || (last && count > 0)) {
        merge_candidates(state + r * slots, a.top_slots, count, lane);
        if (lane == 0) counts[r] = 0;
      }
    }
  }
  __syncthreads();

  for (int r = warp; r < rows; r += warps) {
    const Entry<T>* top = state + r * slots;
    const std::int64_t out = (g * a.queries + first_query + r) * a.k;
    for (int t = lane; t < a.k; t += 32) {
      const Entry<T> e = top[t];
      const bool reached = e.index != no_key;
      a.values[out + t] = reached ? e.score : -std::numeric_limits<T>::infinity();
      a.indices[out + t] = reached ? e.index : 0;
    }
  }
}

// Launches the kernel with BQ-query tiles if its shared memory fits the
// device; false (nothing launched) if not.
template <typename T, int BQ>
bool launch_fused(const Args<T>& base, int device, cudaStream_t stream) {
  Args<T> args = base;
  args.tiles = (args.queries + BQ - 1) / BQ;
  const std::int64_t bytes = SharedLayout<T, BQ>(args).total();
  int limit = 0;
  TKF_CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  const std::int64_t blocks = args.groups * args.tiles;
  if (bytes > limit || blocks > std::numeric_limits<int>::max()) return false;
  TKF_CUDA_CHECK(cudaFuncSetAttribute(topk_scores_kernel<T, BQ>,
                                      cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(bytes)));
  topk_scores_kernel<T, BQ><<<static_cast<unsigned>(blocks), BQ * 4, bytes, stream>>>(args);
  TKF_CUDA_CHECK_LAUNCH();
  return true;
}

}  // namespace

void CudaBackend::topk_scores(const Tensor& q, const Tensor& keys, double scale,
                              const RowMask& mask, std::int64_t k, std::int64_t chunk_rows,
                              const Tensor& values, const Tensor& indices) {
  const TopKScoresShape shape = check_topk_scores(q, keys, mask, k, chunk_rows, values, indices);
  const cuda::Launch launch(q, {&keys, &values, &indices}, "topk_scores");
  if (shape.groups == 0 || shape.queries == 0) return;
  std::int64_t top_slots = 1;
  while (top_slots < k) top_slots <<= 1;
  // Positions are 32-bit in the kernel, and no_key must stay above every key.
  // (A top list of 2^16 slots is far beyond any device's shared memory.)
  const bool fits_int = shape.keys < no_key && shape.queries < no_key &&
                        shape.head_dim < (1 << 20) && top_slots <= (1 << 16);
  bool fused = false;
  dispatch_floating(q.dtype(), "topk_scores", [&](auto zero) {
    using T = decltype(zero);
    if (!fits_int) return;
    Tensor lengths;
    if (mask.key_lengths.defined()) {
      lengths = mask.key_lengths.to(DType::i64).to(q.device()).contiguous();
    }
    Args<T> args{};
    args.q = typed<T>(q);
    args.keys = typed<T>(keys);
    args.key_lengths = lengths.defined() ? typed<std::int64_t>(lengths) : nullptr;
    args.values = typed_mut<T>(values);
    args.indices = typed_mut<std::int32_t>(indices);
    args.groups = shape.groups;
    args.queries = shape.queries;
    args.keys_per_group = shape.keys;
    args.groups_per_item = shape.groups_per_item;
    args.causal = mask.causal;
    args.causal_offset = std::clamp(mask.causal_offset, -shape.queries - 1, shape.keys);
    args.scale = static_cast<T>(scale);
    args.head_dim = static_cast<int>(shape.head_dim);
    args.k = static_cast<int>(k);
    args.top_slots = static_cast<int>(top_slots);
    args.q_stride = static_cast<int>((shape.head_dim + 3) / 4 * 4);
    // An odd number of 16-byte words per key row: the 16 rows that a warp's
    // lanes read at one dimension fall in distinct banks.
    args.key_stride = args.q_stride / 4 % 2 == 1 ? args.q_stride : args.q_stride + 4;
    fused = launch_fused<T, 64>(args, launch.device_index(), launch.stream()) ||
            launch_fused<T, 32>(args, launch.device_index(), launch.stream());
  });
  if (!fused) {
    topk_scores_by_blocks(*this, shape, q, keys, scale, mask, k, chunk_rows, values, indices);
  }
}

}  // namespace topkformer::kernels
