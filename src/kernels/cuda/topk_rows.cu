// Row-wise top-k on the GPU: one block per row, results identical to the CPU's
// (src/kernels/cpu/topk_rows.cpp) bit for bit.
// See Note [CUDA top-k rows].
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/launch.h"
#include "kernels/dispatch.h"
#include "kernels/topk_rows.h"

// Note [CUDA top-k rows]
// The order is the CPU's strict total order (see Note [top-k order] in
// kernels/topk_rows.h): entries compare as (key descending, index ascending).
// Values are copied from the row, not rebuilt from keys, so the NaN payload
// and the sign of a zero are the element's own.
//
// - Rows of n <= sort_capacity (sort_rows_kernel): the whole row goes into
//   shared memory and a bitonic sort orders it; the first k are the answer.
// - Longer rows (select_rows_kernel, select_threads per block), in rounds of
//   up to sort_capacity winners (one round for k <= 1024):
//   1. Radix select, 8 bits a pass from the top (4 passes for f32, 8 for
//      f64, each a read of the row), finds the key T of the round's m-th best
//      entry and how many of the entries equal to T it takes. Counts come
//      from a shared 256-bin histogram (integer atomics: exact in any order).
//   2. Collection, in index order, tile by tile with a block-wide prefix sum:
//      every entry above T and the lowest-index entries equal to T, so which
//      ties win does not depend on scheduling.
//   3. A bitonic sort of the m winners, written out.
//   A later round selects among the entries after the previous round's last
//   winner in the order, so k may be anything up to n (the top-k feed-forward
//   layer may keep more than 1024 of d_ff units).
// Positions within a row are 32-bit: the launch checks n <= 2^30.

namespace topkformer::kernels {

namespace {

constexpr int sort_capacity = 1024;  // entries one bitonic sort orders (a power of 2)
constexpr int select_threads = 512;  // a multiple of 32, >= radix_bins
constexpr int radix_bits = 8;
constexpr int radix_bins = 1 << radix_bits;
constexpr unsigned full_warp = 0xffffffffu;
constexpr std::uint32_t padding_index = 0xffffffffu;  // sorts after every real entry

template <typename T>
using Key = OrderKey<T>;

__device__ std::uint32_t bits_of(float v) {
  return __float_as_uint(v);
}
__device__ std::uint64_t bits_of(double v) {
  return static_cast<std::uint64_t>(__double_as_longlong(v));
}

// Keys that compare as the CPU orders values. See Note [top-k order].
template <typename T>
__device__ Key<T> order_key(T value) {
  return order_key_of_bits<T>(bits_of(value));
}

// The strict order of entries: larger key first, then lower index.
template <typename K>
__device__ bool better(K key_a, std::uint32_t index_a, K key_b, std::uint32_t index_b) {
  return key_a > key_b || (key_a == key_b && index_a < index_b);
}

// Sorts keys/indices[0, size) best first (size a power of 2, entries beyond
// the real ones padded with key 0 and padding_index). Called by the whole
// block after the entries are in place; ends synchronised.
template <typename K>
__device__ void bitonic_sort(K* keys, std::uint32_t* indices, int size) {
  for (int span = 2; span <= size; span <<= 1) {
    for (int stride = span >> 1; stride > 0; stride >>= 1) {
      for (int t = threadIdx.x; t < size / 2; t += blockDim.x) {
        const int lo = 2 * t - (t & (stride - 1));
        const int hi = lo + stride;
        // Runs of `span` alternate direction; the last run (all of it) is best first.
        const bool best_first = (lo & span) == 0;
        if (better(keys[hi], indices[hi], keys[lo], indices[lo]) == best_first) {
          const K key = keys[lo];
          keys[lo] = keys[hi];
          keys[hi] = key;
          const std::uint32_t index = indices[lo];
          indices[lo] = indices[hi];
          indices[hi] = index;
        }
      }
      __syncthreads();
    }
  }
}

// Writes the first `count` sorted entries: the row's own elements and their indices.
template <typename T, typename I>
__device__ void write_sorted(const T* row, const std::uint32_t* sorted_indices, int count,
                             T* values, I* indices) {
  for (int j = threadIdx.x; j < count; j += blockDim.x) {
    const std::uint32_t i = sorted_indices[j];
    values[j] = row[i];
    indices[j] = static_cast<I>(i);
  }
}

__host__ __device__ int sort_size(int count) {
  int size = 1;
  while (size < count) size <<= 1;
  return size;
}

// Rows of n <= sort_capacity: a sort of the whole row. blockDim.x is any
// multiple of 32 up to sort_capacity / 2.
template <typename T, typename I>
__global__ void __launch_bounds__(sort_capacity / 2)
    sort_rows_kernel(const T* x, int n, int k, int size, T* values, I* indices) {
  using K = Key<T>;
  __shared__ K keys[sort_capacity];
  __shared__ std::uint32_t entry_indices[sort_capacity];
  const T* row = x + static_cast<std::int64_t>(blockIdx.x) * n;
  for (int i = threadIdx.x; i < size; i += blockDim.x) {
    keys[i] = i < n ? order_key(row[i]) : K{0};
    entry_indices[i] = i < n ? static_cast<std::uint32_t>(i) : padding_index;
  }
  __syncthreads();
  bitonic_sort(keys, entry_indices, size);
  const std::int64_t out = static_cast<std::int64_t>(blockIdx.x) * k;
  write_sorted(row, entry_indices, k, values + out, indices + out);
}

// Adds one to bin `digit` for each lane with `counted`. Lanes of a warp mostly
// share the top digits (similar magnitudes, runs of -inf in masked rows), so
// one atomic per distinct digit instead of one per lane. Called by whole warps.
__device__ void add_to_histogram(unsigned* histogram, bool counted, unsigned digit) {
  const unsigned voters = __ballot_sync(full_warp, counted);
  if (counted) {
    const unsigned peers = __match_any_sync(voters, digit);
    if (static_cast<int>(threadIdx.x % 32) == __ffs(peers) - 1) {
      atomicAdd(&histogram[digit], static_cast<unsigned>(__popc(peers)));
    }
  }
}

// The exclusive prefix sum of `value` over the block in thread order, and the
// block's total in *total. Called by every thread; `scratch` holds one word
// per warp and is free again when it returns.
__device__ unsigned block_exclusive_scan(unsigned value, unsigned* scratch, unsigned* total) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  unsigned inclusive = value;
  for (int offset = 1; offset < 32; offset <<= 1) {
    const unsigned other = __shfl_up_sync(full_warp, inclusive, offset);
    if (lane >= offset) inclusive += other;
  }
  if (lane == 31) scratch[warp] = inclusive;
  __syncthreads();
  unsigned before = 0, sum = 0;
  for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) {
    if (w < warp) before += scratch[w];
    sum += scratch[w];
  }
  *total = sum;
  __syncthreads();
  return before + inclusive - value;
}

// Shared state of select_rows_kernel.
template <typename K>
struct SelectStorage {
  K keys[sort_capacity];
  std::uint32_t indices[sort_capacity];
  unsigned histogram[radix_bins];
  unsigned scratch[32];
  unsigned digit, remaining;
};

// Picks the digit of the m-th best candidate from the histogram: the bin
// where the count of candidates with a larger-or-equal digit first reaches
// `remaining`. Exactly one bin qualifies, since the candidates number at
// least `remaining` >= 1. Sets s.digit and s.remaining (what is still needed
// from that bin); every thread calls it, and reads them after a sync.
template <typename K>
__device__ void choose_digit(SelectStorage<K>& s, unsigned remaining) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const bool bin_thread = threadIdx.x < radix_bins;  // whole warps
  unsigned count = 0, at_or_above = 0;
  if (bin_thread) {
    count = s.histogram[threadIdx.x];
    at_or_above = count;
    for (int offset = 1; offset < 32; offset <<= 1) {
      const unsigned other = __shfl_down_sync(full_warp, at_or_above, offset);
      if (lane + offset < 32) at_or_above += other;
    }
    if (lane == 0) s.scratch[warp] = at_or_above;
  }
  __syncthreads();
  if (bin_thread) {
    for (int w = warp + 1; w < radix_bins / 32; ++w) at_or_above += s.scratch[w];
    const unsigned above = at_or_above - count;
    if (above < remaining && remaining <= at_or_above) {
      s.digit = threadIdx.x;
      s.remaining = remaining - above;
    }
  }
}

// Rows of n > sort_capacity (blockDim.x == select_threads): radix select and
// collection in rounds of up to sort_capacity winners.
template <typename T, typename I>
__global__ void __launch_bounds__(select_threads)
    select_rows_kernel(const T* x, int n, int k, T* values, I* indices) {
  using K = Key<T>;
  constexpr int key_bits = sizeof(K) * 8;
  __shared__ SelectStorage<K> s;
  const T* row = x + static_cast<std::int64_t>(blockIdx.x) * n;
  T* row_values = values + static_cast<std::int64_t>(blockIdx.x) * k;
  I* row_indices = indices + static_cast<std::int64_t>(blockIdx.x) * k;

  // The candidates of a round: entries after the previous round's last
  // winner (bound_key, bound_index) in the order; all of them in round one.
  bool bounded = false;
  K bound_key = 0;
  std::uint32_t bound_index = 0;
  const auto candidate = [&](K key, int i) {
    return !bounded || key < bound_key ||
           (key == bound_key && static_cast<std::uint32_t>(i) > bound_index);
  };

  for (int done = 0; done < k;) {
    const int m = k - done < sort_capacity ? k - done : sort_capacity;

    // 1. Radix select: after each pass, the top digits of the m-th best key
    // are known (prefix under mask) and `remaining` of the candidates
    // matching them are still to be taken.
    K prefix = 0, mask = 0;
    unsigned remaining = m;
    for (int shift = key_bits - radix_bits; shift >= 0; shift -= radix_bits) {
      for (int b = threadIdx.x; b < radix_bins; b += blockDim.x) s.histogram[b] = 0;
      __syncthreads();
      // base is the same for a whole warp, so the warp votes together.
      for (int base = threadIdx.x / 32 * 32; base < n; base += blockDim.x) {
        const int i = base + threadIdx.x % 32;
        bool counted = false;
        unsigned digit = 0;
        if (i < n) {
          const K key = order_key(row[i]);
          counted = candidate(key, i) && (key & mask) == prefix;
          digit = static_cast<unsigned>(key >> shift) & (radix_bins - 1);
        }
        add_to_histogram(s.histogram, counted, digit);
      }
      __syncthreads();
      choose_digit(s, remaining);
      __syncthreads();
      prefix |= static_cast<K>(s.digit) << shift;
      mask |= static_cast<K>(radix_bins - 1) << shift;
      remaining = s.remaining;
    }
    // The m-th best candidate's key, and how many candidates equal to it win.
    const K threshold = prefix;
    const unsigned ties = remaining;
    const unsigned above_count = m - ties;

    // 2. Collection in index order: entries above the threshold fill slots
    // [0, above_count), the first `ties` equal to it the slots after.
    unsigned above_seen = 0, ties_seen = 0;  // the same in every thread
    for (int base = 0; base < n; base += blockDim.x) {
      const int i = base + threadIdx.x;
      bool above = false, tie = false;
      K key = 0;
      if (i < n) {
        key = order_key(row[i]);
        if (candidate(key, i)) {
          above = key > threshold;
          tie = key == threshold;
        }
      }
      // Both counts in one scan: each is at most blockDim.x < 2^16 per tile.
      unsigned tile_total;
      const unsigned before =
          block_exclusive_scan((above ? 1u << 16 : 0u) | (tie ? 1u : 0u), s.scratch, &tile_total);
      if (above) {
        const unsigned slot = above_seen + (before >> 16);
        s.keys[slot] = key;
        s.indices[slot] = static_cast<std::uint32_t>(i);
      }
      if (tie) {
        const unsigned rank = ties_seen + (before & 0xffffu);
        if (rank < ties) {
          s.keys[above_count + rank] = key;
          s.indices[above_count + rank] = static_cast<std::uint32_t>(i);
        }
      }
      above_seen += tile_total >> 16;
      ties_seen += tile_total & 0xffffu;
      if (above_seen == above_count && ties_seen >= ties) break;
    }

    // 3. Sort the winners (padded to a power of 2) and write them out.
    const int size = sort_size(m);
    for (int j = m + threadIdx.x; j < size; j += blockDim.x) {
      s.keys[j] = 0;
      s.indices[j] = padding_index;
    }
    __syncthreads();
    bitonic_sort(s.keys, s.indices, size);
    write_sorted(row, s.indices, m, row_values + done, row_indices + done);
    // The next round writes the winners' slots only after the syncs of its
    // radix select, so every thread reads the bound first.
    bounded = true;
    bound_key = s.keys[m - 1];
    bound_index = s.indices[m - 1];
    done += m;
  }
}

}  // namespace

void CudaBackend::topk_rows(const Tensor& x, std::int64_t k, const Tensor& values,
                            const Tensor& indices) {
  check_topk_rows(x, k, values, indices);
  const cuda::Launch launch(x, {&values, &indices}, "topk_rows");
  const std::int64_t n = x.size(-1), rows = row_count(x);
  // 32-bit positions in a row, with room for a tile past the end.
  TKF_CHECK(n <= (std::int64_t{1} << 30) && rows <= std::numeric_limits<std::int32_t>::max(),
            "topk_rows: the CUDA kernels take up to 2^31 - 1 rows of up to 2^30 elements, got ",
            shape_str(x.shape()));
  dispatch_index(indices.dtype(), "topk_rows", [&](auto index_zero) {
    using I = decltype(index_zero);
    dispatch_floating(x.dtype(), "topk_rows", [&](auto zero) {
      using T = decltype(zero);
      if (rows == 0) return;
      const T* in = typed<T>(x);
      T* out_values = typed_mut<T>(values);
      I* out_indices = typed_mut<I>(indices);
      const auto blocks = static_cast<unsigned>(rows);
      if (n <= sort_capacity) {
        // One compare-exchange per thread per step.
        const int size = sort_size(static_cast<int>(n));
        const int threads = std::clamp(size / 2, 32, sort_capacity / 2);
        sort_rows_kernel<T, I><<<blocks, threads, 0, launch.stream()>>>(
            in, static_cast<int>(n), static_cast<int>(k), size, out_values, out_indices);
      } else {
        select_rows_kernel<T, I><<<blocks, select_threads, 0, launch.stream()>>>(
            in, static_cast<int>(n), static_cast<int>(k), out_values, out_indices);
      }
      TKF_CUDA_CHECK_LAUNCH();
    });
  });
}

}  // namespace topkformer::kernels
