// The deterministic scatter-add of scatter_add_rows and sparse_scatter_add:
// entries sorted by destination row, each row adding its own in a fixed order,
// with no float atomics. See Note [deterministic scatter].
#include <cuda_runtime_api.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cub/device/device_radix_sort.cuh>

#include "kernels/cuda/indexed_rows.cuh"

// Note [deterministic scatter]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// 1. scatter_keys_kernel: entry e gets the key g * M + index[e] (its row of the
//    table seen as [G * M, D]) and the value e. A zero-weight entry gets the
//    key G * M, past every row, so that no row visits it (padding entries of
//    top-k attention often share one index: they would make one row's work
//    long for nothing). An out-of-range index is reported through the flag,
//    read back before anything is added, so a failed call leaves the table as
//    it was, as on the CPU.
// 2. cub::DeviceRadixSort::SortPairs over key bits [0, bit_width(G * M)): a
//    stable LSD sort, so within a row the entries stay in ascending e.
// 3. segment_starts_kernel: a binary search per row finds where its entries
//    start among the sorted ones.
// 4. scatter_accumulate_kernel: one warp per (row, slab of 32 packs of
//    columns) starts from the table's value and adds its entries in
//    ascending e (add_entries_in_order), acc = fma(w, x, acc). The CPU's
//    loops (src/kernels/cpu/rows.cpp, sparse.cpp) add them in the same order,
//    one rounding each, so the results are the CPU's bit for bit where the
//    host compiler contracts `t += w * x` into an fma (GCC does for
//    x86-64-v3), and always for scatter_add_rows (w = 1: fma(1, x, acc)
//    rounds like acc + x).
//
// Temporary device memory for E entries: the sort's double buffers of keys
// and values, 16 E bytes with 32-bit keys and values (E and G * M below 2^31),
// 32 E bytes otherwise; the starts, (G * M + 1) words; CUB's scratch (per-tile
// digit counts, a small fraction of the buffers). The top-k feed-forward
// layer's backward (E = R k = 2^18 * 512 = 2^27) takes 2 GiB.
//
// A row's work is proportional to its entries and one warp per slab does it
// alone, in order: a row that collects most entries (a key every query picks)
// takes as long as all of them. That is the price of the CPU's order.

namespace topkformer::cuda::indexed {

namespace {

// V indexes entries: every e + grid stride stays below 2^32 for 32-bit V (E < 2^31).
template <typename T, typename I, typename K, typename V>
__global__ void scatter_keys_kernel(const I* __restrict__ index, const T* __restrict__ weights,
                                    V entries, V entries_per_group, std::int64_t table_rows,
                                    K skip_key, K* __restrict__ keys, V* __restrict__ values,
                                    unsigned long long* flag) {
  const V step = static_cast<V>(gridDim.x) * blockDim.x;
  for (V e = static_cast<V>(blockIdx.x) * blockDim.x + threadIdx.x; e < entries; e += step) {
    const I i = index[e];
    K key = skip_key;
    if (check_index(i, table_rows, static_cast<std::int64_t>(e), flag) &&
        (weights == nullptr || weights[e] != T(0))) {
      key = static_cast<K>(static_cast<std::int64_t>(e / entries_per_group) * table_rows +
                           static_cast<std::int64_t>(i));
    }
    keys[e] = key;
    values[e] = e;
  }
}

// starts[row] = the first sorted position whose key is >= row, for row in
// [0, rows]: row r's entries are [starts[r], starts[r + 1]).
template <typename K, typename V>
__global__ void segment_starts_kernel(const K* __restrict__ keys, V entries, std::int64_t rows,
                                      V* __restrict__ starts) {
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       row <= rows; row += step) {
    const K key = static_cast<K>(row);
    V low = 0;
    V count = entries;
    while (count > 0) {
      const V half = count / 2;
      if (keys[low + half] < key) {
        low += half + 1;
        count -= half + 1;
      } else {
        count = half;
      }
    }
    starts[row] = low;
  }
}

// One warp per (table row, slab of 32 packs): every loop bound below depends
// on the item only, so the warp stays converged for the shuffles. Each lane
// fetches one entry of a chunk of 32 (source row and weight, coalesced), and
// the warp walks the chunk in order, each lane adding its pack of columns.
template <typename T, int N, typename V>
__global__ void scatter_accumulate_kernel(T* __restrict__ table, const T* __restrict__ rows,
                                          const T* __restrict__ weights,
                                          const V* __restrict__ sources,
                                          const V* __restrict__ starts, std::int64_t table_rows,
                                          std::int64_t width, std::int64_t slabs,
                                          V entries_per_row) {
  const int lane = static_cast<int>(threadIdx.x) % warp_size;
  const std::int64_t items = table_rows * slabs;
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * warps_per_block;
  for (std::int64_t item = static_cast<std::int64_t>(blockIdx.x) * warps_per_block +
                           static_cast<std::int64_t>(threadIdx.x) / warp_size;
       item < items; item += step) {
    const std::int64_t row = item / slabs;
    const V begin = starts[row];
    const V end = starts[row + 1];
    if (begin == end) continue;  // no entries: the row stays untouched
    const std::int64_t column = ((item % slabs) * warp_size + lane) * N;
    const bool active = column < width;  // width % N == 0: the whole pack is in the row
    T* target = table + row * width + column;
    Pack<T, N> acc{};
    if (active) acc = load_pack<N>(target);
    for (V chunk = begin; chunk < end; chunk += warp_size) {
      T weight = 0;
      std::int64_t source = 0;
      if (chunk + lane < end) {
        const V e = sources[chunk + lane];
        weight = weights == nullptr ? T(1) : weights[e];
        source = static_cast<std::int64_t>(e / entries_per_row) * width;
      }
      const V left = end - chunk;
      const int count = left < static_cast<V>(warp_size) ? static_cast<int>(left) : warp_size;
      add_entries_in_order<N>(acc, rows, column, active, weight, source, count);
    }
    if (active) store_pack<N>(target, acc);
  }
}

template <typename U>
DType dtype_of_unsigned() {
  return sizeof(U) == 4 ? DType::i32 : DType::i64;
}

// See Note [deterministic scatter].
template <typename T, typename I, typename K, typename V>
void scatter_sorted(const IndexedScatter& p, const Tensor& table, const Tensor& index,
                    const Tensor* weights, const Tensor& rows, const char* op,
                    const Launch& launch) {
  const cudaStream_t stream = launch.stream();
  const Device device = table.device();
  const std::int64_t entries = p.groups * p.entries_per_group;
  const std::int64_t table_rows = p.groups * p.table_rows;  // also the key of skipped entries
  const T* weight_data = weights == nullptr ? nullptr : kernels::typed<T>(*weights);

  const Tensor key_buffers = Tensor::empty({2, entries}, dtype_of_unsigned<K>(), device);
  const Tensor value_buffers = Tensor::empty({2, entries}, dtype_of_unsigned<V>(), device);
  K* keys = static_cast<K*>(key_buffers.raw_data());
  V* values = static_cast<V*>(value_buffers.raw_data());
  const IndexFlag flag(device, stream);
  scatter_keys_kernel<T, I, K, V><<<grid_for(entries), threads_per_block, 0, stream>>>(
      kernels::typed<I>(index), weight_data, static_cast<V>(entries),
      static_cast<V>(p.entries_per_group), p.table_rows, static_cast<K>(table_rows), keys, values,
      flag.get());
  TKF_CUDA_CHECK_LAUNCH();
  flag.throw_if_set(index, p.table_rows, op);
  if (p.width == 0) return;

  cub::DoubleBuffer<K> sorted_keys(keys, keys + entries);
  cub::DoubleBuffer<V> sorted_values(values, values + entries);
  const int end_bit =
      std::max(1, static_cast<int>(std::bit_width(static_cast<std::uint64_t>(table_rows))));
  std::size_t scratch_bytes = 0;
  TKF_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, scratch_bytes, sorted_keys, sorted_values,
                                                 static_cast<V>(entries), 0, end_bit, stream));
  const Tensor scratch = Tensor::empty(
      {std::max<std::int64_t>(static_cast<std::int64_t>(scratch_bytes), 1)}, DType::u8, device);
  TKF_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(scratch.raw_data(), scratch_bytes, sorted_keys,
                                                 sorted_values, static_cast<V>(entries), 0, end_bit,
                                                 stream));

  const Tensor starts = Tensor::empty({table_rows + 1}, dtype_of_unsigned<V>(), device);
  V* start_data = static_cast<V*>(starts.raw_data());
  segment_starts_kernel<K, V><<<grid_for(table_rows + 1), threads_per_block, 0, stream>>>(
      sorted_keys.Current(), static_cast<V>(entries), table_rows, start_data);
  TKF_CUDA_CHECK_LAUNCH();

  dispatch_pack<T>(p.width, {table.raw_data(), rows.raw_data()}, [&](auto pack) {
    constexpr int N = decltype(pack)::value;
    const std::int64_t packs = p.width / N;
    const std::int64_t slabs = (packs + warp_size - 1) / warp_size;
    scatter_accumulate_kernel<T, N, V>
        <<<grid_for(table_rows * slabs, warps_per_block), threads_per_block, 0, stream>>>(
            kernels::typed_mut<T>(table), kernels::typed<T>(rows), weight_data,
            sorted_values.Current(), start_data, table_rows, p.width, slabs,
            static_cast<V>(p.entries_per_row));
    TKF_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace

void indexed_scatter_add(const IndexedScatter& problem, const Tensor& table, const Tensor& index,
                         const Tensor* weights, const Tensor& rows, const char* op,
                         const Launch& launch) {
  kernels::dispatch_index(index.dtype(), op, [&](auto index_zero) {
    using I = decltype(index_zero);
    kernels::dispatch_floating(table.dtype(), op, [&](auto zero) {
      using T = decltype(zero);
      if (problem.groups * problem.entries_per_group == 0) return;
      constexpr std::int64_t narrow = std::int64_t{1} << 31;
      if (problem.groups * problem.entries_per_group < narrow &&
          problem.groups * problem.table_rows < narrow) {
        scatter_sorted<T, I, std::uint32_t, std::uint32_t>(problem, table, index, weights, rows, op,
                                                           launch);
      } else {
        scatter_sorted<T, I, std::uint64_t, std::uint64_t>(problem, table, index, weights, rows, op,
                                                           launch);
      }
    });
  });
}

}  // namespace topkformer::cuda::indexed
