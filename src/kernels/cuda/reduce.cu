// Reductions on the GPU: row sums and maxima, sum_to and sum_squares.
// CPU twin: src/kernels/cpu/reduce.cpp. See Note [CUDA reductions].
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduction.cuh"
#include "kernels/dispatch.h"
#include "kernels/reduce.h"

// Note [CUDA reductions]
// Sums accumulate in double for f32 and f64 alike, as the CPU's do, in an
// order fixed by the shape (reduction.cuh); the order differs from the CPU's
// sequential one, so results agree to rounding, not bit for bit. max_rows
// agrees exactly.

namespace topkformer::kernels {

namespace {

using namespace cuda::reduction;

// Elements of a strided tensor: output i sums x[kept.offset(i) + reduced.offset(k)].
template <typename T>
struct StridedSource {
  const T* x;  // the view's first element (raw_data)
  Dims kept, reduced;
  __device__ std::int64_t base(std::int64_t i) const { return kept.offset(i); }
  __device__ double value(std::int64_t base, std::int64_t k) const {
    return static_cast<double>(x[base + reduced.offset(k)]);
  }
};

// The same elements as one-element Sums for the column kernels.
template <typename T>
struct StridedColumnSource {
  StridedSource<T> elements;
  __device__ std::int64_t base(std::int64_t i) const { return elements.base(i); }
  __device__ Sums<1> value(std::int64_t base, std::int64_t k) const {
    return {{elements.value(base, k)}};
  }
};

// Output i goes to out[dims.offset(i)], rounded to T.
template <typename T>
struct StoreStrided {
  T* out;  // the view's first element (raw_data)
  Dims dims;
  __device__ void operator()(std::int64_t i, std::int64_t, double total) const {
    out[dims.offset(i)] = static_cast<T>(total);
  }
  __device__ void operator()(std::int64_t i, std::int64_t, const Sums<1>& total) const {
    out[dims.offset(i)] = static_cast<T>(total.v[0]);
  }
};

// The squares of x's elements, as one row.
template <typename T>
struct SquaresSource {
  const T* x;
  __device__ std::int64_t base(std::int64_t) const { return 0; }
  __device__ double value(std::int64_t, std::int64_t k) const {
    const double element = static_cast<double>(x[k]);
    return element * element;
  }
};

struct StoreScalar {
  double* out;
  __device__ void operator()(std::int64_t, std::int64_t, double total) const { *out = total; }
};

template <typename T>
struct ArgMaxSource {
  const T* x;
  std::int64_t n;
  __device__ std::int64_t base(std::int64_t row) const { return row * n; }
  __device__ ArgMax<T> value(std::int64_t base, std::int64_t k) const { return {x[base + k], k}; }
};

template <typename T>
struct StoreArgMax {
  T* values;
  std::int64_t* indices;
  __device__ void operator()(std::int64_t row, std::int64_t, const ArgMax<T>& best) const {
    values[row] = best.value;
    indices[row] = best.index;
  }
};

// sum_to's dimensions sorted into the kept ones (out's extent is x's) and the
// reduced ones (out's extent is 1, x's is not), each coalesced: extent-1
// dimensions dropped, a dimension merged into the one outside it where the
// pair steps like one dimension (in x, and for kept ones in out as well).
struct BroadcastSum {
  std::vector<std::int64_t> kept_shape, kept_x_strides, kept_out_strides;
  std::vector<std::int64_t> reduced_shape, reduced_strides;
  std::int64_t outputs = 1, terms = 1;
};

BroadcastSum sort_dimensions(const Tensor& x, const Tensor& out) {
  BroadcastSum sum;
  for (int d = 0; d < x.dim(); ++d) {
    const std::int64_t extent = x.size(d), xs = x.stride(d), os = out.stride(d);
    if (out.size(d) == 1 && extent != 1) {
      sum.terms *= extent;
      if (!sum.reduced_shape.empty() && sum.reduced_strides.back() == xs * extent) {
        sum.reduced_shape.back() *= extent;
        sum.reduced_strides.back() = xs;
      } else {
        sum.reduced_shape.push_back(extent);
        sum.reduced_strides.push_back(xs);
      }
    } else if (extent != 1) {
      sum.outputs *= extent;
      if (!sum.kept_shape.empty() && sum.kept_x_strides.back() == xs * extent &&
          sum.kept_out_strides.back() == os * extent) {
        sum.kept_shape.back() *= extent;
        sum.kept_x_strides.back() = xs;
        sum.kept_out_strides.back() = os;
      } else {
        sum.kept_shape.push_back(extent);
        sum.kept_x_strides.push_back(xs);
        sum.kept_out_strides.push_back(os);
      }
    }
  }
  return sum;
}

std::int64_t smallest_stride(const std::vector<std::int64_t>& strides) {
  std::int64_t smallest = INT64_MAX;
  for (std::int64_t s : strides) smallest = std::min(smallest, s < 0 ? -s : s);
  return smallest;
}

}  // namespace

void CudaBackend::sum_rows(const Tensor& x, const Tensor& out) {
  const std::int64_t n = check_sum_rows(x, out);
  const std::int64_t rows = out.numel();
  check_same_dtype(x, out, "sum_rows");
  const cuda::Launch launch(x, {&out}, "sum_rows");
  dispatch_floating(x.dtype(), "sum_rows", [&](auto zero) {
    using T = decltype(zero);
    // A warp per short row, a block per long one, long rows that are few
    // split into segments (row_sums). Empty rows sum to 0.
    const StridedSource<T> source{typed<T>(x), linear_dims(rows, n), linear_dims(n)};
    row_sums(source, StoreStrided<T>{typed_mut<T>(out), linear_dims(rows)}, rows, n, x.device(),
             launch.stream());
  });
}

void CudaBackend::sum_squares(const Tensor& x, const Tensor& out) {
  const std::int64_t n = check_sum_squares(x, out);
  const cuda::Launch launch(x, {&out}, "sum_squares");
  dispatch_floating(x.dtype(), "sum_squares", [&](auto zero) {
    using T = decltype(zero);
    // One row of n elements, deterministic (row_sums): a block, or segments
    // and a second pass in order for long tensors. An empty x sums to 0.
    row_sums(SquaresSource<T>{typed<T>(x)}, StoreScalar{typed_mut<double>(out)}, 1, n, x.device(),
             launch.stream());
  });
}

void CudaBackend::max_rows(const Tensor& x, const Tensor& values, const Tensor& indices) {
  const std::int64_t n = check_max_rows(x, indices);
  const std::int64_t rows = x.numel() / n;
  // The kernel writes values[row] and indices[row] as flat arrays.
  TKF_CHECK(values.is_contiguous() && indices.is_contiguous() && values.numel() == rows &&
                indices.numel() == rows,
            "max_rows: ", rows, " rows of shape ", shape_str(x.shape()),
            " need contiguous values and indices of as many elements, got ",
            shape_str(values.shape()), " and ", shape_str(indices.shape()));
  check_same_dtype(x, values, "max_rows");
  const cuda::Launch launch(x, {&values, &indices}, "max_rows");
  if (rows == 0) return;
  dispatch_floating(x.dtype(), "max_rows", [&](auto zero) {
    using T = decltype(zero);
    const ArgMaxSource<T> source{typed<T>(x), n};
    const StoreArgMax<T> sink{typed_mut<T>(values), typed_mut<std::int64_t>(indices)};
    if (n <= warp_row_limit) {
      rows_kernel<warp_size, ArgMaxOp<T>>
          <<<row_grid<warp_size>(rows), block_threads, 0, launch.stream()>>>(source, sink, rows, n,
                                                                             n, 1);
    } else {
      rows_kernel<block_threads, ArgMaxOp<T>>
          <<<row_grid<block_threads>(rows), block_threads, 0, launch.stream()>>>(source, sink, rows,
                                                                                 n, n, 1);
    }
    TKF_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::sum_to(const Tensor& x, const Tensor& out) {
  check_sum_to(x, out);
  check_same_dtype(x, out, "sum_to");
  const cuda::Launch launch(x, {&out}, "sum_to");
  const BroadcastSum sum = sort_dimensions(x, out);
  // An output (kept) extent of 0 leaves nothing to write; a reduced extent of
  // 0 makes every output an empty sum, 0 (the kernels write it).
  if (out.numel() == 0) return;
  const Dims kept = make_dims(sum.kept_shape, sum.kept_x_strides, "sum_to");
  const Dims reduced = make_dims(sum.reduced_shape, sum.reduced_strides, "sum_to");
  const Dims out_dims = make_dims(sum.kept_shape, sum.kept_out_strides, "sum_to");
  // Columns (the kernel reads neighbouring outputs side by side) when
  // neighbouring outputs are nearer in x than neighbouring terms, as in bias
  // gradients [N, D] -> [1, D]; otherwise rows (a group of threads walks each
  // output's terms), as in [N, D] -> [N, 1] or a sum of everything.
  const bool by_columns = !sum.kept_shape.empty() &&
                          (sum.reduced_shape.empty() || smallest_stride(sum.kept_x_strides) <
                                                            smallest_stride(sum.reduced_strides));
  dispatch_floating(x.dtype(), "sum_to", [&](auto zero) {
    using T = decltype(zero);
    const StridedSource<T> source{typed<T>(x), kept, reduced};
    const StoreStrided<T> sink{typed_mut<T>(out), out_dims};
    if (by_columns) {
      column_sums<1>(StridedColumnSource<T>{source}, sink, sum.outputs, sum.terms, x.device(),
                     launch.stream());
    } else {
      row_sums(source, sink, sum.outputs, sum.terms, x.device(), launch.stream());
    }
  });
}

}  // namespace topkformer::kernels
