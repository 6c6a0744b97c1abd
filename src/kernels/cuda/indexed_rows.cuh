// What the CUDA kernels that address table rows by index share (rows.cu,
// sparse.cu, indexed_scatter.cu); included by .cu files only.
// See Note [indexed rows].
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <type_traits>

#include "kernels/cuda/launch.h"
#include "kernels/dispatch.h"
#include "kernels/rows.h"

// Note [indexed rows]
// 16-byte packs of a row, a warp's in-order weighted sum of gathered rows, the
// flag through which a kernel reports an out-of-range index, and the
// deterministic scatter-add by sorted index (defined in indexed_scatter.cu).

namespace topkformer::cuda::indexed {

constexpr unsigned full_warp = 0xffffffffu;
constexpr int warp_size = 32;
constexpr int warps_per_block = threads_per_block / warp_size;

// N consecutive elements of a row, moved as one 16-byte access when N * sizeof(T) == 16.
template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

template <int N, typename T>
__device__ inline Pack<T, N> load_pack(const T* from) {
  return *reinterpret_cast<const Pack<T, N>*>(from);
}

template <int N, typename T>
__device__ inline void store_pack(T* to, const Pack<T, N>& pack) {
  *reinterpret_cast<Pack<T, N>*>(to) = pack;
}

// a * b + c rounded once, whatever nvcc's --fmad: the rounding of the CPU's
// `t += w * x` where the host compiler contracts it (GCC for x86-64-v3).
__device__ inline float fused_multiply_add(float a, float b, float c) {
  return __fmaf_rn(a, b, c);
}
__device__ inline double fused_multiply_add(double a, double b, double c) {
  return __fma_rn(a, b, c);
}

// Entries whose table rows a warp loads before it waits for the first: the
// adds of a row must run in order, but their loads need not.
constexpr int load_batch = 8;

// Adds entries 0 .. count - 1 of a chunk held one per lane (lane t: the
// weight and the element offset in `base` of entry t's row) to each lane's
// pack of columns at `column`, in entry order, skipping zero weights. The
// whole warp calls it with the same count (the shuffles need every lane);
// lanes that are not `active` only relay.
template <int N, typename T>
__device__ inline void add_entries_in_order(Pack<T, N>& acc, const T* base, std::int64_t column,
                                            bool active, T weight, std::int64_t source, int count) {
  for (int first = 0; first < count; first += load_batch) {
    T w[load_batch];
    Pack<T, N> x[load_batch];
#pragma unroll
    for (int u = 0; u < load_batch; ++u) {
      w[u] = __shfl_sync(full_warp, weight, (first + u) % warp_size);
      const std::int64_t from = __shfl_sync(full_warp, source, (first + u) % warp_size);
      if (first + u >= count) w[u] = T(0);
      if (active && w[u] != T(0)) x[u] = load_pack<N>(base + from + column);
    }
#pragma unroll
    for (int u = 0; u < load_batch; ++u) {
      if (!active || w[u] == T(0)) continue;
#pragma unroll
      for (int c = 0; c < N; ++c) acc.v[c] = fused_multiply_add(w[u], x[u].v[c], acc.v[c]);
    }
  }
}

// Calls body(std::integral_constant<int, N>{}): N = 16 / sizeof(T) when rows of
// `width` elements starting at each of `bases` are 16-byte aligned (so every
// row is), else 1.
template <typename T, typename Body>
void dispatch_pack(std::int64_t width, std::initializer_list<const void*> bases, Body&& body) {
  constexpr int wide = 16 / sizeof(T);
  bool aligned = width % wide == 0;
  for (const void* base : bases)
    aligned = aligned && reinterpret_cast<std::uintptr_t>(base) % 16 == 0;
  if (aligned) {
    body(std::integral_constant<int, wide>{});
  } else {
    body(std::integral_constant<int, 1>{});
  }
}

// Where kernels report an out-of-range index: one device word holding the
// lowest bad position (atomicMin, so the report names the same position as
// the CPU's sequential check, whatever the scheduling), all ones while none.
class IndexFlag {
 public:
  IndexFlag(const Device& device, cudaStream_t stream)
      : word_(Tensor::empty({1}, DType::i64, device)), stream_(stream) {
    TKF_CUDA_CHECK(cudaMemsetAsync(get(), 0xff, sizeof(unsigned long long), stream));
  }

  unsigned long long* get() const { return static_cast<unsigned long long*>(word_.raw_data()); }

  // Reads the flag back: this synchronises, the host waiting for everything
  // queued on the stream so far. Throws the CPU's error for the lowest bad
  // position of `index` (whose value it reads from the device).
  void throw_if_set(const Tensor& index, std::int64_t limit, const char* op) const {
    unsigned long long first = 0;
    TKF_CUDA_CHECK(cudaMemcpyAsync(&first, get(), sizeof(first), cudaMemcpyDeviceToHost, stream_));
    TKF_CUDA_CHECK(cudaStreamSynchronize(stream_));
    if (first == std::numeric_limits<unsigned long long>::max()) return;
    const auto position = static_cast<std::int64_t>(first);
    std::int64_t value = 0;
    kernels::dispatch_index(index.dtype(), op, [&](auto zero) {
      using I = decltype(zero);
      I bad = 0;
      TKF_CUDA_CHECK(cudaMemcpyAsync(&bad, kernels::typed<I>(index) + position, sizeof(I),
                                     cudaMemcpyDeviceToHost, stream_));
      TKF_CUDA_CHECK(cudaStreamSynchronize(stream_));
      value = static_cast<std::int64_t>(bad);
    });
    kernels::throw_index_out_of_range(op, value, position, limit);
  }

 private:
  Tensor word_;
  cudaStream_t stream_;
};

// True when index value i is a row of a table of `limit` rows; else records
// `position` in the flag.
template <typename I>
__device__ inline bool check_index(I i, std::int64_t limit, std::int64_t position,
                                   unsigned long long* flag) {
  if (i >= 0 && static_cast<std::int64_t>(i) < limit) return true;
  atomicMin(flag, static_cast<unsigned long long>(position));
  return false;
}

// An indexed scatter-add: entry e of `index` (G groups of entries_per_group
// entries, each in [0, M)) adds weight[e] * rows[e / entries_per_row] (weight
// 1 without weights) to table[g, index[e]]. table [G, M, D] and rows
// [*, D] are contiguous, of one floating dtype.
struct IndexedScatter {
  std::int64_t groups, table_rows, width;  // G, M, D
  std::int64_t entries_per_group;          // N (scatter_add_rows) or R * k
  std::int64_t entries_per_row;            // 1 (scatter_add_rows) or k
};

// Adds in a fixed order without float atomics: each destination row gets its
// entries in ascending e, as the CPU's loops add them, skipping zero weights.
// Throws (through an IndexFlag: one synchronisation) before touching the
// table when an index is out of range. `weights` may be nullptr.
void indexed_scatter_add(const IndexedScatter& problem, const Tensor& table, const Tensor& index,
                         const Tensor* weights, const Tensor& rows, const char* op,
                         const Launch& launch);

}  // namespace topkformer::cuda::indexed
