// Device code shared by the row-wise kernels (softmax, cross-entropy): how the
// threads of a grid share out the rows, reductions over the threads of a row
// in a fixed order (so the same inputs give the same bits on every run), and
// the online max/sum of a softmax (Milakov & Gimelshein, 2018).
#pragma once

#include <cstdint>
#include <limits>

#include "kernels/cuda/launch.h"

// A namespace of its own: indexed_rows.cuh and reduction.cuh define some of
// the same short names (warp_size, full_warp) in topkformer::cuda.
namespace topkformer::cuda::row_reduce {

constexpr int warp_size = 32;
constexpr unsigned full_warp = 0xffffffffu;

template <typename T>
__device__ T minus_infinity() {
  return -std::numeric_limits<T>::infinity();
}

__device__ inline float exp_of(float x) {
  return expf(x);
}
__device__ inline double exp_of(double x) {
  return exp(x);
}
__device__ inline float log_of(float x) {
  return logf(x);
}
__device__ inline double log_of(double x) {
  return log(x);
}

struct Sum {
  template <typename T>
  __device__ T operator()(T a, T b) const {
    return a + b;
  }
};

template <typename T>
__device__ T shuffle_xor(T value, int lane_mask) {
  return __shfl_xor_sync(full_warp, value, lane_mask);
}

// A butterfly over the 32 lanes of a warp (all of which must take part): every
// lane ends with the combination of all 32 values. `combine` is commutative,
// so each pair of partners computes the same bits and all lanes agree.
template <typename T, typename Combine>
__device__ T warp_combine(T value, Combine combine) {
  for (int lane_mask = warp_size / 2; lane_mask > 0; lane_mask /= 2) {
    value = combine(value, shuffle_xor(value, lane_mask));
  }
  return value;
}

// One warp per row, for rows short enough that a block's threads would idle:
// a block of threads_per_block threads takes as many rows as it has warps,
// and the grid strides over the rest.
struct WarpPerRow {
  static constexpr int threads = threads_per_block;
  static constexpr int size = warp_size;  // threads per row
  static constexpr int rows_per_block = threads / warp_size;

  __device__ int rank() const { return static_cast<int>(threadIdx.x) % warp_size; }
  __device__ std::int64_t first_row() const {
    return static_cast<std::int64_t>(blockIdx.x) * rows_per_block + threadIdx.x / warp_size;
  }
  __device__ std::int64_t row_stride() const {
    return static_cast<std::int64_t>(gridDim.x) * rows_per_block;
  }
  // Every lane gets the result.
  template <typename T, typename Combine>
  __device__ T combine(T value, Combine combine) const {
    return warp_combine(value, combine);
  }
};

// One block of Threads threads per row, for long rows (attention over long
// sequences, a vocabulary); the grid strides over the rows.
template <int Threads>
struct BlockPerRow {
  static_assert(Threads % warp_size == 0 && Threads <= 1024);
  static constexpr int threads = Threads;
  static constexpr int size = Threads;
  static constexpr int rows_per_block = 1;

  __device__ int rank() const { return static_cast<int>(threadIdx.x); }
  __device__ std::int64_t first_row() const { return blockIdx.x; }
  __device__ std::int64_t row_stride() const { return gridDim.x; }
  // Every thread of the block must call it; every thread gets the result.
  // Warps combine by butterfly, then each thread folds the warps' results in
  // warp order (a broadcast read of shared memory), which is a fixed order.
  template <typename T, typename Combine>
  __device__ T combine(T value, Combine combine) const {
    __shared__ T partials[Threads / warp_size];
    value = warp_combine(value, combine);
    if (threadIdx.x % warp_size == 0) partials[threadIdx.x / warp_size] = value;
    __syncthreads();
    T total = partials[0];
    for (int warp = 1; warp < Threads / warp_size; ++warp) total = combine(total, partials[warp]);
    __syncthreads();  // the next call may overwrite partials only once all have read them
    return total;
  }
};

// Rows of up to this many elements get a warp each, longer ones a block.
constexpr std::int64_t warp_row_limit = 1024;

// Calls body(WarpPerRow{}) or body(BlockPerRow<LongRowThreads>{}) for rows of
// length n; the body launches its kernel with Rows::threads threads and
// rows_grid<Rows>(rows) blocks.
template <int LongRowThreads, typename Body>
void with_rows_mapping(std::int64_t n, Body&& body) {
  if (n <= warp_row_limit) {
    body(WarpPerRow{});
  } else {
    body(BlockPerRow<LongRowThreads>{});
  }
}

template <typename Rows>
unsigned rows_grid(std::int64_t rows) {
  return grid_for(rows, Rows::rows_per_block);
}

// The maximum of a set of values and the sum of exp(value - max) over it,
// built one value at a time and merged across threads, so that a softmax
// needs one pass over its row for both. Acc is the type of the sum (double
// for the long rows of cross-entropy). An empty set, or one of -inf only, has
// max -inf and sum 0. No constructor: it lives in shared memory.
template <typename T, typename Acc>
struct MaxSum {
  T max;
  Acc sum;
};

template <typename T, typename Acc>
__device__ MaxSum<T, Acc> empty_max_sum() {
  return {minus_infinity<T>(), Acc(0)};
}

template <typename T, typename Acc>
__device__ MaxSum<T, Acc> shuffle_xor(MaxSum<T, Acc> value, int lane_mask) {
  return {shuffle_xor(value.max, lane_mask), shuffle_xor(value.sum, lane_mask)};
}

// Adds x: a new maximum rescales the sum so far (by 0 while it is -inf).
template <typename T, typename Acc>
__device__ MaxSum<T, Acc> add_value(MaxSum<T, Acc> s, T x) {
  if (x > s.max) {
    s.sum = s.sum * Acc(exp_of(s.max - x)) + Acc(1);
    s.max = x;
  } else if (s.max != minus_infinity<T>()) {
    s.sum += Acc(exp_of(x - s.max));
  }
  return s;
}

struct MergeMaxSum {
  template <typename T, typename Acc>
  __device__ MaxSum<T, Acc> operator()(MaxSum<T, Acc> a, MaxSum<T, Acc> b) const {
    const T max = a.max > b.max ? a.max : b.max;
    if (max == minus_infinity<T>()) return {max, Acc(0)};  // -inf - -inf would be NaN
    return {max, a.sum * Acc(exp_of(a.max - max)) + b.sum * Acc(exp_of(b.max - max))};
  }
};

}  // namespace topkformer::cuda::row_reduce
