// Reductions: row sums and maxima, and the sum over broadcast dimensions.
#include <algorithm>
#include <array>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/parallel.h"
#include "kernels/reduce.h"

namespace topkformer::kernels::cpu {

void CpuBackend::sum_rows(const Tensor& x, const Tensor& out) {
  const std::int64_t n = check_sum_rows(x, out);
  const std::int64_t rows = out.numel();
  dispatch_floating(x.dtype(), "sum_rows", [&](auto zero) {
    using T = decltype(zero);
    const T* in = typed<T>(x);
    T* result = typed_mut<T>(out);
    // Sums of f32 accumulate in f64: long rows (a loss over a batch) stay exact
    // to f32 precision, and the result does not depend on the thread count.
    parallel_for(rows, n, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t r = begin; r < end; ++r) {
        double total = 0.0;
        for (std::int64_t i = 0; i < n; ++i) total += in[r * n + i];
        result[r] = static_cast<T>(total);
      }
    });
  });
}

void CpuBackend::sum_squares(const Tensor& x, const Tensor& out) {
  const std::int64_t n = check_sum_squares(x, out);
  // Blocks of a fixed size, each summed in order (in parallel), then the
  // blocks' sums in order: the order depends on n only, not on the threads.
  constexpr std::int64_t block = std::int64_t{1} << 16;
  std::vector<double> partial(static_cast<std::size_t>((n + block - 1) / block));
  dispatch_floating(x.dtype(), "sum_squares", [&](auto zero) {
    using T = decltype(zero);
    const T* in = typed<T>(x);
    parallel_for(std::int64_t(partial.size()), block, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t b = begin; b < end; ++b) {
        const std::int64_t last = std::min(n, (b + 1) * block);
        double total = 0.0;
        for (std::int64_t i = b * block; i < last; ++i) {
          const double value = in[i];
          total += value * value;
        }
        partial[std::size_t(b)] = total;
      }
    });
  });
  double total = 0.0;
  for (const double sum : partial) total += sum;
  *typed_mut<double>(out) = total;
}

void CpuBackend::max_rows(const Tensor& x, const Tensor& values, const Tensor& indices) {
  const std::int64_t n = check_max_rows(x, indices);
  const std::int64_t rows = x.numel() / n;
  dispatch_floating(x.dtype(), "max_rows", [&](auto zero) {
    using T = decltype(zero);
    const T* in = typed<T>(x);
    T* best = typed_mut<T>(values);
    std::int64_t* where = typed_mut<std::int64_t>(indices);
    parallel_for(rows, n, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t r = begin; r < end; ++r) {
        const T* row = in + r * n;
        std::int64_t arg = 0;
        for (std::int64_t i = 1; i < n; ++i) {
          if (row[i] > row[arg] || (std::isnan(row[i]) && !std::isnan(row[arg]))) arg = i;
        }
        best[r] = row[arg];
        where[r] = arg;
      }
    });
  });
}

namespace {

// Whether sum_to reduces only leading dimensions of a contiguous x into a
// contiguous out ([N, C] -> [1, C], as bias gradients do).
bool sums_leading_dimensions(const Tensor& x, const Tensor& out) {
  if (!x.is_contiguous() || !out.is_contiguous()) return false;
  bool kept = false;
  for (int d = 0; d < x.dim(); ++d) {
    const bool reduced = out.size(d) == 1 && x.size(d) != 1;
    if (reduced && kept) return false;
    kept = kept || !reduced;
  }
  return true;
}

// The same sums as the general loop (each output adds its inputs in row
// order, in double), but a block of columns at a time, so that rows are read
// contiguously instead of one column at a time with a stride of a whole row.
void sum_leading_dimensions(const Tensor& x, const Tensor& out) {
  const std::int64_t columns = out.numel(), rows = x.numel() / columns;
  constexpr std::int64_t block = 64;
  dispatch_floating(x.dtype(), "sum_to", [&](auto zero) {
    using T = decltype(zero);
    const T* in = x.data<T>();
    T* result = out.data<T>();
    const std::int64_t blocks = (columns + block - 1) / block;
    parallel_for(blocks, rows * block, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t b = begin; b < end; ++b) {
        const std::int64_t first = b * block, width = std::min(block, columns - first);
        std::array<double, block> totals{};
        for (std::int64_t r = 0; r < rows; ++r) {
          const T* row = in + r * columns + first;
          for (std::int64_t c = 0; c < width; ++c) totals[std::size_t(c)] += row[c];
        }
        for (std::int64_t c = 0; c < width; ++c) result[first + c] = T(totals[std::size_t(c)]);
      }
    });
  });
}

}  // namespace

void CpuBackend::sum_to(const Tensor& x, const Tensor& out) {
  check_sum_to(x, out);
  if (x.numel() == 0) {
    fill(out, 0.0);
    return;
  }
  // Each output element sums its own sub-tensor of x in a fixed order: the
  // result is deterministic and the threads never write to the same element.
  Shape reduced_shape;
  Strides reduced_strides;
  for (int d = 0; d < x.dim(); ++d) {
    if (out.size(d) == 1 && x.size(d) != 1) {
      reduced_shape.push_back(x.size(d));
      reduced_strides.push_back(x.stride(d));
    }
  }
  const std::int64_t reduced_count = shape_numel(reduced_shape);
  // The innermost reduced dimension is summed in a tight loop.
  const std::int64_t inner_extent = reduced_shape.empty() ? 1 : reduced_shape.back();
  const std::int64_t inner_stride = reduced_strides.empty() ? 0 : reduced_strides.back();
  Strides kept_strides = x.strides();
  for (int d = 0; d < x.dim(); ++d) {
    if (out.size(d) == 1) kept_strides[d] = 0;
  }
  const Shape& out_shape = out.shape();
  if (sums_leading_dimensions(x, out)) {
    sum_leading_dimensions(x, out);
    return;
  }
  dispatch_floating(x.dtype(), "sum_to", [&](auto zero) {
    using T = decltype(zero);
    const T* in = storage_base<T>(x);
    T* result = storage_base<T>(out);
    parallel_for(out.numel(), reduced_count, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t o = begin; o < end; ++o) {
        std::int64_t in_base = x.offset(), out_position = out.offset(), rest = o;
        for (int d = out.dim() - 1; d >= 0; --d) {
          const std::int64_t i = rest % out_shape[d];
          rest /= out_shape[d];
          in_base += i * kept_strides[d];
          out_position += i * out.stride(d);
        }
        double total = 0.0;
        for (std::int64_t outer = 0; outer < reduced_count / inner_extent; ++outer) {
          std::int64_t position = in_base, index = outer;
          for (int d = static_cast<int>(reduced_shape.size()) - 2; d >= 0; --d) {
            position += (index % reduced_shape[d]) * reduced_strides[d];
            index /= reduced_shape[d];
          }
          for (std::int64_t i = 0; i < inner_extent; ++i) total += in[position + i * inner_stride];
        }
        result[out_position] = static_cast<T>(total);
      }
    });
  });
}

}  // namespace topkformer::kernels::cpu
