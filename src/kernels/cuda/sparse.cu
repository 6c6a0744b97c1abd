// Products with a row-sparse matrix of k entries per row (top-k attention,
// the top-k feed-forward layer) on the GPU; the CPU twin is
// src/kernels/cpu/sparse.cpp.
#include <cstdint>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/indexed_rows.cuh"
#include "kernels/sparse.h"

// Note [CUDA sparse products]
// The gathers give one warp to an output row (sparse_gather_dot) or to a slab
// of 32 16-byte packs of it (sparse_gather_sum, so that D = 768 spreads over
// six warps). The warp reads the row's entries 32 at a time, one per lane
// (coalesced), checks each index (an out-of-range one goes to an IndexFlag,
// read after the kernel: one synchronisation per call), and walks them in
// order with shuffles, every lane loading its pack of the entry's table row
// (8 entries' rows at a time, so that a warp has several loads in flight).
// - sparse_gather_sum: acc = fma(w, x, acc) over j in order from 0, skipping
//   w == 0 exactly like the CPU (inf or NaN behind a zero weight adds
//   nothing): the CPU's order and rounding, so its result bit for bit where
//   the host compiler contracts `r += w * x` into an fma (GCC does for
//   x86-64-v3).
// - sparse_gather_dot: per entry, each lane's partial dot over its packs, then
//   a butterfly sum across the warp (a fixed tree: deterministic, but not the
//   CPU's sequential order, so equal to it within rounding). Lane t keeps the
//   dot of entry t of the chunk, so the 32 results go out in one store.
// - sparse_scatter_add: the sorted, deterministic scatter-add of
//   indexed_scatter.cu (the CPU's order and rounding, like the gather-sum).

namespace topkformer::kernels {

namespace {

namespace indexed = cuda::indexed;

using indexed::full_warp;
using indexed::fused_multiply_add;
using indexed::IndexFlag;
using indexed::Pack;
using indexed::warp_size;
using indexed::warps_per_block;

// The shape of one launch: out_rows = G * R output rows of k entries, each
// index in [0, M), rows of `width` elements in `packs` packs.
struct SparseShape {
  std::int64_t out_rows, rows_per_group, k, table_rows, width, packs;
};

// One warp per (output row, slab of 32 packs); `slabs` >= 1 even for width 0,
// so that every index is checked. Loop bounds depend on the item only: the
// warp stays converged for the shuffles.
template <typename T, int N, typename I>
__global__ void sparse_gather_sum_kernel(const T* __restrict__ weights, const I* __restrict__ index,
                                         const T* __restrict__ table, T* __restrict__ rows,
                                         SparseShape s, std::int64_t slabs,
                                         unsigned long long* flag) {
  const int lane = static_cast<int>(threadIdx.x) % warp_size;
  const std::int64_t items = s.out_rows * slabs;
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * warps_per_block;
  for (std::int64_t item = static_cast<std::int64_t>(blockIdx.x) * warps_per_block +
                           static_cast<std::int64_t>(threadIdx.x) / warp_size;
       item < items; item += step) {
    const std::int64_t row = item / slabs;
    const std::int64_t column = ((item % slabs) * warp_size + lane) * N;
    const bool active = column < s.width;  // width % N == 0: the whole pack is in the row
    const T* group_table = table + (row / s.rows_per_group) * s.table_rows * s.width;
    Pack<T, N> acc{};
    for (std::int64_t chunk = 0; chunk < s.k; chunk += warp_size) {
      T weight = 0;  // 0 also for a bad index: nothing is read for it
      std::int64_t source = 0;
      if (chunk + lane < s.k) {
        const std::int64_t e = row * s.k + chunk + lane;
        const I i = index[e];
        if (indexed::check_index(i, s.table_rows, e, flag)) {
          weight = weights[e];
          source = static_cast<std::int64_t>(i) * s.width;
        }
      }
      const int count = s.k - chunk < warp_size ? static_cast<int>(s.k - chunk) : warp_size;
      indexed::add_entries_in_order<N>(acc, group_table, column, active, weight, source, count);
    }
    if (active) indexed::store_pack<N>(rows + row * s.width + column, acc);
  }
}

// One warp per output row (a dot needs the whole row).
template <typename T, int N, typename I>
__global__ void sparse_gather_dot_kernel(const T* __restrict__ rows, const I* __restrict__ index,
                                         const T* __restrict__ table, T* __restrict__ out,
                                         SparseShape s, unsigned long long* flag) {
  const int lane = static_cast<int>(threadIdx.x) % warp_size;
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * warps_per_block;
  for (std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * warps_per_block +
                          static_cast<std::int64_t>(threadIdx.x) / warp_size;
       row < s.out_rows; row += step) {
    const T* dense = rows + row * s.width;
    const T* group_table = table + (row / s.rows_per_group) * s.table_rows * s.width;
    for (std::int64_t chunk = 0; chunk < s.k; chunk += warp_size) {
      const std::int64_t e = row * s.k + chunk + lane;
      std::int64_t source = -1;  // none: past the row's entries, or a bad index
      if (chunk + lane < s.k) {
        const I i = index[e];
        if (indexed::check_index(i, s.table_rows, e, flag)) {
          source = static_cast<std::int64_t>(i) * s.width;
        }
      }
      T mine = 0;  // lane t: the dot of entry t of the chunk
      const int count = s.k - chunk < warp_size ? static_cast<int>(s.k - chunk) : warp_size;
      for (int first = 0; first < count; first += indexed::load_batch) {
        // A batch of entries at once, so that their table rows load together.
        std::int64_t from[indexed::load_batch];
        T partial[indexed::load_batch];
#pragma unroll
        for (int u = 0; u < indexed::load_batch; ++u) {
          from[u] = __shfl_sync(full_warp, source, (first + u) % warp_size);
          if (first + u >= count) from[u] = -1;
          partial[u] = 0;
        }
        for (std::int64_t p = lane; p < s.packs; p += warp_size) {
          const Pack<T, N> a = indexed::load_pack<N>(dense + p * N);
#pragma unroll
          for (int u = 0; u < indexed::load_batch; ++u) {
            if (from[u] < 0) continue;
            const Pack<T, N> b = indexed::load_pack<N>(group_table + from[u] + p * N);
#pragma unroll
            for (int c = 0; c < N; ++c) partial[u] = fused_multiply_add(a.v[c], b.v[c], partial[u]);
          }
        }
#pragma unroll
        for (int offset = warp_size / 2; offset > 0; offset /= 2) {
#pragma unroll
          for (int u = 0; u < indexed::load_batch; ++u) {
            partial[u] += __shfl_xor_sync(full_warp, partial[u], offset);
          }
        }
#pragma unroll
        for (int u = 0; u < indexed::load_batch; ++u) {
          if (lane == first + u) mine = partial[u];
        }
      }
      if (chunk + lane < s.k) out[e] = mine;
    }
  }
}

}  // namespace

void CudaBackend::sparse_gather_sum(const Tensor& weights, const Tensor& index, const Tensor& table,
                                    const Tensor& rows) {
  const SparseProblem p = check_sparse(weights, index, table, rows, "sparse_gather_sum");
  const cuda::Launch launch(weights, {&index, &table, &rows}, "sparse_gather_sum");
  dispatch_index(index.dtype(), "sparse_gather_sum", [&](auto index_zero) {
    using I = decltype(index_zero);
    dispatch_floating(weights.dtype(), "sparse_gather_sum", [&](auto zero) {
      using T = decltype(zero);
      const std::int64_t out_rows = p.groups * p.rows;
      if (out_rows == 0) return;
      const IndexFlag flag(weights.device(), launch.stream());
      indexed::dispatch_pack<T>(p.width, {table.raw_data(), rows.raw_data()}, [&](auto pack) {
        constexpr int N = decltype(pack)::value;
        const SparseShape s{out_rows, p.rows, p.k, p.table_rows, p.width, p.width / N};
        const std::int64_t slabs = std::max<std::int64_t>((s.packs + warp_size - 1) / warp_size, 1);
        sparse_gather_sum_kernel<T, N, I>
            <<<cuda::grid_for(out_rows * slabs, warps_per_block), cuda::threads_per_block, 0,
               launch.stream()>>>(typed<T>(weights), typed<I>(index), typed<T>(table),
                                  typed_mut<T>(rows), s, slabs, flag.get());
        TKF_CUDA_CHECK_LAUNCH();
      });
      flag.throw_if_set(index, p.table_rows, "sparse_gather_sum");
    });
  });
}

void CudaBackend::sparse_gather_dot(const Tensor& rows, const Tensor& index, const Tensor& table,
                                    const Tensor& out) {
  const SparseProblem p = check_sparse(out, index, table, rows, "sparse_gather_dot");
  const cuda::Launch launch(out, {&index, &table, &rows}, "sparse_gather_dot");
  dispatch_index(index.dtype(), "sparse_gather_dot", [&](auto index_zero) {
    using I = decltype(index_zero);
    dispatch_floating(out.dtype(), "sparse_gather_dot", [&](auto zero) {
      using T = decltype(zero);
      const std::int64_t out_rows = p.groups * p.rows;
      if (out_rows == 0) return;
      const IndexFlag flag(out.device(), launch.stream());
      indexed::dispatch_pack<T>(p.width, {table.raw_data(), rows.raw_data()}, [&](auto pack) {
        constexpr int N = decltype(pack)::value;
        const SparseShape s{out_rows, p.rows, p.k, p.table_rows, p.width, p.width / N};
        sparse_gather_dot_kernel<T, N, I><<<cuda::grid_for(out_rows, warps_per_block),
                                            cuda::threads_per_block, 0, launch.stream()>>>(
            typed<T>(rows), typed<I>(index), typed<T>(table), typed_mut<T>(out), s, flag.get());
        TKF_CUDA_CHECK_LAUNCH();
      });
      flag.throw_if_set(index, p.table_rows, "sparse_gather_dot");
    });
  });
}

void CudaBackend::sparse_scatter_add(const Tensor& weights, const Tensor& index, const Tensor& rows,
                                     const Tensor& table) {
  const SparseProblem p = check_sparse(weights, index, table, rows, "sparse_scatter_add");
  const cuda::Launch launch(table, {&weights, &index, &rows}, "sparse_scatter_add");
  const indexed::IndexedScatter problem{p.groups, p.table_rows, p.width, p.rows * p.k, p.k};
  indexed::indexed_scatter_add(problem, table, index, &weights, rows, "sparse_scatter_add", launch);
}

}  // namespace topkformer::kernels
