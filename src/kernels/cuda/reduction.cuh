// Deterministic reductions for the CUDA kernel families (reduce.cu,
// layer_norm.cu): every sum in an order fixed by the shape alone, with no
// float atomics. See Note [deterministic reductions].
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/cuda/launch.h"
#include "topkformer/core/error.h"
#include "topkformer/core/tensor.h"

// Note [deterministic reductions]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Every sum is taken in an order fixed by the shape alone, so that a result
// never depends on scheduling, the GPU model or the run. Two shapes of work:
//
//  - Rows (the reduced elements of one output lie along a row): a group of
//    threads per row, a warp for short rows and a block for long ones. Each
//    thread accumulates a fixed, strided subset of the row in order, then the
//    group combines by a fixed butterfly (warp_allreduce, block_allreduce).
//    Very long rows with few of them are split into segments: a first pass
//    writes one partial per (row, segment) into a temporary GPU tensor, a
//    second sums each row's partials in order (row_sums).
//
//  - Columns (the reduced elements of consecutive outputs are consecutive in
//    memory, as in the bias gradient [N, D] -> [D]): a block of 32 x 8 threads
//    takes 32 columns (one per lane, coalesced reads) and a chunk of rows (the
//    8 thread rows step through it); the 8 partials are combined by a fixed
//    tree in shared memory. With several chunks each block writes its partial
//    into a temporary [chunks, columns] tensor and a second kernel adds the
//    chunks of each column in order (column_sums).
//
// Sums accumulate in double whatever the element type, as the CPU twins do
// (src/kernels/cpu): the compute capabilities built for (8.0, 9.0) run double
// arithmetic at half the float rate, and these kernels are bound by memory.
//
// A kernel is parameterised by a Source (where its inputs come from) and a
// Sink (what it does with each result):
//   source.base(i)     an offset precomputed once per output i
//   source.value(b, k) the k-th reduced element of that output, as Op::State
//   sink(i, part, s)   stores result s of output i (part: segment or chunk)

namespace topkformer::cuda::reduction {

constexpr int warp_size = 32;
constexpr int block_threads = threads_per_block;  // 256
constexpr int block_warps = block_threads / warp_size;
static_assert(block_threads % warp_size == 0 && block_warps <= warp_size);

// Rows of at most this many elements get a warp each, longer ones a block.
constexpr std::int64_t warp_row_limit = 1024;

// ---- strided index spaces ----

constexpr int max_dims = 12;

// A linear index over `shape` (row-major, innermost last) mapped to an element
// offset through `stride`. Rank 1 (the common, coalesced case) costs one
// multiplication; rank 0 maps everything to offset 0.
struct Dims {
  int rank;
  std::int64_t shape[max_dims];
  std::int64_t stride[max_dims];

  __host__ __device__ std::int64_t offset(std::int64_t index) const {
    std::int64_t result = 0;
    for (int d = rank - 1; d > 0; --d) {
      result += (index % shape[d]) * stride[d];
      index /= shape[d];
    }
    return rank > 0 ? result + index * stride[0] : result;
  }
};

inline Dims make_dims(const std::vector<std::int64_t>& shape,
                      const std::vector<std::int64_t>& stride, const char* op) {
  TKF_CHECK(shape.size() <= static_cast<std::size_t>(max_dims), op, ": ", shape.size(),
            " dimensions that do not merge, more than the ", max_dims, " supported");
  Dims dims{};
  dims.rank = static_cast<int>(shape.size());
  for (std::size_t d = 0; d < shape.size(); ++d) {
    dims.shape[d] = shape[d];
    dims.stride[d] = stride[d];
  }
  return dims;
}

// [extent] with unit stride, or `stride`.
inline Dims linear_dims(std::int64_t extent, std::int64_t stride = 1) {
  Dims dims{};
  dims.rank = 1;
  dims.shape[0] = extent;
  dims.stride[0] = stride;
  return dims;
}

// ---- reduction operators ----

// N running sums, reduced together (layer norm: sum of dxhat and of dxhat * xhat).
template <int N>
struct Sums {
  double v[N];
};

struct SumOp {
  using State = double;
  __device__ static double identity() { return 0.0; }
  __device__ static double combine(double a, double b) { return a + b; }
};

template <int N>
struct SumsOp {
  using State = Sums<N>;
  __device__ static Sums<N> identity() {
    Sums<N> s;
#pragma unroll
    for (int w = 0; w < N; ++w) s.v[w] = 0.0;
    return s;
  }
  __device__ static Sums<N> combine(const Sums<N>& a, const Sums<N>& b) {
    Sums<N> s;
#pragma unroll
    for (int w = 0; w < N; ++w) s.v[w] = a.v[w] + b.v[w];
    return s;
  }
};

// The first maximum of a row and where it is, with the CPU's rule for NaN: a
// NaN beats every number (the first NaN wins), and equal values go to the
// lower index. That is a total order on (value, index), so combining is
// commutative and associative and any tree gives the sequential scan's answer.
template <typename T>
struct ArgMax {
  T value;
  std::int64_t index;  // -1: no element yet
};

template <typename T>
struct ArgMaxOp {
  using State = ArgMax<T>;
  __device__ static ArgMax<T> identity() { return {T(0), -1}; }
  __device__ static ArgMax<T> combine(const ArgMax<T>& a, const ArgMax<T>& b) {
    if (a.index < 0) return b;
    if (b.index < 0) return a;
    const bool a_nan = a.value != a.value, b_nan = b.value != b.value;
    if (a_nan != b_nan) return a_nan ? a : b;
    if (!a_nan) {
      if (a.value > b.value) return a;
      if (b.value > a.value) return b;
    }
    return a.index < b.index ? a : b;
  }
};

// ---- warp and block combination ----

__device__ inline double shuffle_xor(double v, int mask) {
  return __shfl_xor_sync(0xffffffffu, v, mask);
}

template <int N>
__device__ Sums<N> shuffle_xor(const Sums<N>& s, int mask) {
  Sums<N> result;
#pragma unroll
  for (int w = 0; w < N; ++w) result.v[w] = __shfl_xor_sync(0xffffffffu, s.v[w], mask);
  return result;
}

template <typename T>
__device__ ArgMax<T> shuffle_xor(const ArgMax<T>& s, int mask) {
  ArgMax<T> result;
  result.value = __shfl_xor_sync(0xffffffffu, s.value, mask);
  result.index = static_cast<std::int64_t>(
      __shfl_xor_sync(0xffffffffu, static_cast<long long>(s.index), mask));
  return result;
}

// A butterfly over the warp: every lane ends with the same, bitwise equal
// result (lane i computes combine(s_i, s_j) where its partner computes
// combine(s_j, s_i), equal because combine is commutative). All 32 lanes must
// take part.
template <typename Op>
__device__ typename Op::State warp_allreduce(typename Op::State s) {
#pragma unroll
  for (int mask = warp_size / 2; mask > 0; mask >>= 1) s = Op::combine(s, shuffle_xor(s, mask));
  return s;
}

// Rows handled by groups of `Size` threads in blocks of block_threads: a warp
// (Size 32, block_warps rows per block at a time) or the whole block (Size
// block_threads). Loops over rows are grid-stride and uniform over a group.
template <int Size>
struct RowGroup {
  static_assert(Size == warp_size || Size == block_threads);
  static constexpr int per_block = block_threads / Size;

  __device__ static int rank() { return static_cast<int>(threadIdx.x) % Size; }
  __device__ static std::int64_t first() {
    return static_cast<std::int64_t>(blockIdx.x) * per_block + threadIdx.x / Size;
  }
  __device__ static std::int64_t step() { return static_cast<std::int64_t>(gridDim.x) * per_block; }

  // Combines the group's states; every thread of the group gets the result.
  // For a block: each warp combines its lanes, then every warp combines the
  // warps' results in the same order (so all agree), around two barriers
  // that also make `scratch` reusable by the next call.
  template <typename Op>
  __device__ static typename Op::State allreduce(typename Op::State s,
                                                 typename Op::State* scratch) {
    s = warp_allreduce<Op>(s);
    if constexpr (Size == warp_size) {
      return s;
    } else {
      const int lane = threadIdx.x % warp_size, warp = threadIdx.x / warp_size;
      if (lane == 0) scratch[warp] = s;
      __syncthreads();
      s = lane < block_warps ? scratch[lane] : Op::identity();
      s = warp_allreduce<Op>(s);
      __syncthreads();
      return s;
    }
  }
};

// Blocks for `groups` row groups of size Size.
template <int Size>
unsigned row_grid(std::int64_t groups) {
  return grid_for(groups, RowGroup<Size>::per_block);
}

// ---- rows ----

// Output `row` reduces elements [0, n) of its row; with segments > 1 each
// (row, part) item reduces elements [part * segment, (part + 1) * segment)
// and the sink gets the part.
template <int Size, typename Op, typename Source, typename Sink>
__global__ void __launch_bounds__(block_threads)
    rows_kernel(Source source, Sink sink, std::int64_t rows, std::int64_t n, std::int64_t segment,
                std::int64_t segments) {
  using State = typename Op::State;
  using Group = RowGroup<Size>;
  __shared__ State scratch[block_warps];
  const std::int64_t items = rows * segments;
  for (std::int64_t item = Group::first(); item < items; item += Group::step()) {
    const std::int64_t row = item / segments, part = item % segments;
    const std::int64_t begin = part * segment;
    const std::int64_t end = begin + segment < n ? begin + segment : n;
    const auto base = source.base(row);
    State s = Op::identity();
#pragma unroll 4
    for (std::int64_t k = begin + Group::rank(); k < end; k += Size) {
      s = Op::combine(s, source.value(base, k));
    }
    s = Group::template allreduce<Op>(s, scratch);
    if (Group::rank() == 0) sink(row, part, s);
  }
}

// Reads partials [rows, segments] (double) as rows.
struct PartialRows {
  const double* partial;
  std::int64_t segments;
  __device__ std::int64_t base(std::int64_t row) const { return row * segments; }
  __device__ double value(std::int64_t base, std::int64_t k) const { return partial[base + k]; }
};

struct StorePartialRows {
  double* partial;
  std::int64_t segments;
  __device__ void operator()(std::int64_t row, std::int64_t part, double s) const {
    partial[row * segments + part] = s;
  }
};

// How a long row is split: segments of at least min_segment elements, enough
// of them (when rows are few) for about target_blocks blocks. A function of
// the shape only, so the order of the sums is too.
struct RowPlan {
  std::int64_t segment, segments;
};

inline RowPlan plan_rows(std::int64_t rows, std::int64_t n) {
  constexpr std::int64_t target_blocks = 1024, min_segment = 8192;
  const std::int64_t wanted = (target_blocks + rows - 1) / std::max<std::int64_t>(rows, 1);
  const std::int64_t most = (n + min_segment - 1) / min_segment;
  const std::int64_t segments = std::max<std::int64_t>(1, std::min(wanted, most));
  const std::int64_t segment = (n + segments - 1) / segments;
  return {segment, segment > 0 ? (n + segment - 1) / segment : 1};
}

// See Note [deterministic reductions].
// sink(row, 0, sum) for each of `rows` rows of n elements (Source values are
// doubles), deterministic. May allocate a temporary tensor on `device`.
template <typename Source, typename Sink>
void row_sums(const Source& source, const Sink& sink, std::int64_t rows, std::int64_t n,
              Device device, cudaStream_t stream) {
  if (rows <= 0) return;
  if (n <= warp_row_limit) {
    rows_kernel<warp_size, SumOp>
        <<<row_grid<warp_size>(rows), block_threads, 0, stream>>>(source, sink, rows, n, n, 1);
    TKF_CUDA_CHECK_LAUNCH();
    return;
  }
  const RowPlan plan = plan_rows(rows, n);
  if (plan.segments == 1) {
    rows_kernel<block_threads, SumOp>
        <<<row_grid<block_threads>(rows), block_threads, 0, stream>>>(source, sink, rows, n, n, 1);
    TKF_CUDA_CHECK_LAUNCH();
    return;
  }
  // Partials per (row, segment), then each row's partials in order. The
  // temporary goes back to the caching allocator at the end of the scope; the
  // stream orders its next user after these kernels.
  const Tensor scratch = Tensor::empty({rows * plan.segments}, DType::f64, device);
  double* partial = static_cast<double*>(scratch.raw_data());
  rows_kernel<block_threads, SumOp>
      <<<row_grid<block_threads>(rows * plan.segments), block_threads, 0, stream>>>(
          source, StorePartialRows{partial, plan.segments}, rows, n, plan.segment, plan.segments);
  TKF_CUDA_CHECK_LAUNCH();
  rows_kernel<warp_size, SumOp><<<row_grid<warp_size>(rows), block_threads, 0, stream>>>(
      PartialRows{partial, plan.segments}, sink, rows, plan.segments, plan.segments, 1);
  TKF_CUDA_CHECK_LAUNCH();
}

// ---- columns ----

constexpr int column_tile = warp_size;                     // columns per block (threadIdx.x)
constexpr int column_lanes = block_threads / column_tile;  // thread rows per block (threadIdx.y)
static_assert((column_lanes & (column_lanes - 1)) == 0, "the tree needs a power of two");

// Block (blockIdx.x + j gridDim.x, blockIdx.y) sums rows [chunk * rows_per_chunk,
// ...) of 32 columns: thread (x, y) takes rows y, y + 8, ... of column x in
// order, then the 8 thread rows are combined by a fixed tree.
template <int N, typename Source, typename Sink>
__global__ void __launch_bounds__(block_threads)
    columns_kernel(Source source, Sink sink, std::int64_t columns, std::int64_t rows,
                   std::int64_t rows_per_chunk) {
  __shared__ double partial[N][column_lanes][column_tile];
  const int x = threadIdx.x, y = threadIdx.y;
  const std::int64_t chunk = blockIdx.y;
  const std::int64_t begin = chunk * rows_per_chunk;
  const std::int64_t end = begin + rows_per_chunk < rows ? begin + rows_per_chunk : rows;
  const std::int64_t tiles = (columns + column_tile - 1) / column_tile;
  for (std::int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const std::int64_t column = tile * column_tile + x;
    Sums<N> s = SumsOp<N>::identity();
    if (column < columns) {
      const auto base = source.base(column);
#pragma unroll 4
      for (std::int64_t r = begin + y; r < end; r += column_lanes) {
        s = SumsOp<N>::combine(s, source.value(base, r));
      }
    }
#pragma unroll
    for (int w = 0; w < N; ++w) partial[w][y][x] = s.v[w];
    __syncthreads();
#pragma unroll
    for (int half = column_lanes / 2; half > 0; half /= 2) {
      if (y < half) {
#pragma unroll
        for (int w = 0; w < N; ++w) partial[w][y][x] += partial[w][y + half][x];
      }
      __syncthreads();
    }
    if (y == 0 && column < columns) {
#pragma unroll
      for (int w = 0; w < N; ++w) s.v[w] = partial[w][0][x];
      sink(column, chunk, s);
    }
    __syncthreads();
  }
}

// Partials [N, chunks, columns].
template <int N>
struct StorePartialColumns {
  double* partial;
  std::int64_t columns, chunks;
  __device__ void operator()(std::int64_t column, std::int64_t chunk, const Sums<N>& s) const {
#pragma unroll
    for (int w = 0; w < N; ++w) partial[(w * chunks + chunk) * columns + column] = s.v[w];
  }
};

// Each column's chunks in order (reads coalesced across threads).
template <int N, typename Sink>
__global__ void __launch_bounds__(block_threads)
    column_totals_kernel(const double* partial, std::int64_t columns, std::int64_t chunks,
                         Sink sink) {
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t column = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       column < columns; column += step) {
    Sums<N> s;
#pragma unroll
    for (int w = 0; w < N; ++w) {
      double total = 0.0;
      for (std::int64_t chunk = 0; chunk < chunks; ++chunk) {
        total += partial[(w * chunks + chunk) * columns + column];
      }
      s.v[w] = total;
    }
    sink(column, 0, s);
  }
}

// How the rows of a column reduction are chunked: enough chunks for about
// target_blocks blocks over all tiles, each of at least min_chunk rows. A
// function of the shape only.
struct ColumnPlan {
  std::int64_t tiles, chunks, rows_per_chunk;
};

inline ColumnPlan plan_columns(std::int64_t columns, std::int64_t rows) {
  constexpr std::int64_t target_blocks = 1024, min_chunk = 64, max_chunks = 65535;
  const std::int64_t tiles = (columns + column_tile - 1) / column_tile;
  const std::int64_t wanted = (target_blocks + tiles - 1) / std::max<std::int64_t>(tiles, 1);
  const std::int64_t most = (rows + min_chunk - 1) / min_chunk;
  const std::int64_t chunks = std::clamp<std::int64_t>(std::min(wanted, most), 1, max_chunks);
  const std::int64_t rows_per_chunk = std::max<std::int64_t>(1, (rows + chunks - 1) / chunks);
  return {tiles, std::max<std::int64_t>(1, (rows + rows_per_chunk - 1) / rows_per_chunk),
          rows_per_chunk};
}

// See Note [deterministic reductions].
// sink(column, 0, sums) for `columns` outputs, each the N sums of
// source.value(base(column), r) over r in [0, rows) (a Sums<N>),
// deterministic. May allocate a temporary tensor on `device`.
template <int N, typename Source, typename Sink>
void column_sums(const Source& source, const Sink& sink, std::int64_t columns, std::int64_t rows,
                 Device device, cudaStream_t stream) {
  if (columns <= 0) return;
  const ColumnPlan plan = plan_columns(columns, rows);
  const dim3 threads(column_tile, column_lanes);
  const unsigned tile_blocks = static_cast<unsigned>(std::min<std::int64_t>(plan.tiles, 65536));
  if (plan.chunks == 1) {
    columns_kernel<N><<<dim3(tile_blocks, 1), threads, 0, stream>>>(source, sink, columns, rows,
                                                                    plan.rows_per_chunk);
    TKF_CUDA_CHECK_LAUNCH();
    return;
  }
  const Tensor scratch = Tensor::empty({N * plan.chunks * columns}, DType::f64, device);
  double* partial = static_cast<double*>(scratch.raw_data());
  columns_kernel<N><<<dim3(tile_blocks, static_cast<unsigned>(plan.chunks)), threads, 0, stream>>>(
      source, StorePartialColumns<N>{partial, columns, plan.chunks}, columns, rows,
      plan.rows_per_chunk);
  TKF_CUDA_CHECK_LAUNCH();
  column_totals_kernel<N>
      <<<grid_for(columns), block_threads, 0, stream>>>(partial, columns, plan.chunks, sink);
  TKF_CUDA_CHECK_LAUNCH();
}

}  // namespace topkformer::cuda::reduction
