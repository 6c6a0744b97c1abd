// Products with a row-sparse matrix holding k entries per row: the gathers
// and scatter-adds that replace dense products in top-k attention.
#include "kernels/sparse.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/parallel.h"

namespace topkformer::kernels::cpu {

namespace {
// Calls body(T{}, I{}) with the value and index types, after checking the index range.
template <typename Body>
void dispatch_sparse(const Tensor& values, const Tensor& index, std::int64_t limit, const char* op,
                     Body&& body) {
  dispatch_index(index.dtype(), op, [&](auto index_zero) {
    using I = decltype(index_zero);
    check_index_range(typed<I>(index), index.numel(), limit, op);
    dispatch_floating(values.dtype(), op, [&](auto zero) { body(zero, index_zero); });
  });
}
}  // namespace

void CpuBackend::sparse_gather_sum(const Tensor& weights, const Tensor& index, const Tensor& table,
                                   const Tensor& rows) {
  const SparseProblem p = check_sparse(weights, index, table, rows, "sparse_gather_sum");
  dispatch_sparse(weights, index, p.table_rows, "sparse_gather_sum", [&](auto zero, auto iz) {
    using T = decltype(zero);
    using I = decltype(iz);
    const T* w = typed<T>(weights);
    const I* idx = typed<I>(index);
    const T* tab = typed<T>(table);
    T* out = typed_mut<T>(rows);
    parallel_for(p.groups * p.rows, p.k * p.width, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t item = begin; item < end; ++item) {
        const std::int64_t g = item / p.rows;
        T* result = out + item * p.width;
        std::fill(result, result + p.width, T(0));
        for (std::int64_t j = 0; j < p.k; ++j) {
          const T weight = w[item * p.k + j];
          if (weight == T(0)) continue;  // masked keys and dropped entries add nothing
          const T* source = tab + (g * p.table_rows + idx[item * p.k + j]) * p.width;
          for (std::int64_t c = 0; c < p.width; ++c) result[c] += weight * source[c];
        }
      }
    });
  });
}

void CpuBackend::sparse_gather_dot(const Tensor& rows, const Tensor& index, const Tensor& table,
                                   const Tensor& out) {
  const SparseProblem p = check_sparse(out, index, table, rows, "sparse_gather_dot");
  dispatch_sparse(out, index, p.table_rows, "sparse_gather_dot", [&](auto zero, auto iz) {
    using T = decltype(zero);
    using I = decltype(iz);
    const T* dense = typed<T>(rows);
    const I* idx = typed<I>(index);
    const T* tab = typed<T>(table);
    T* result = typed_mut<T>(out);
    parallel_for(p.groups * p.rows, p.k * p.width, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t item = begin; item < end; ++item) {
        const std::int64_t g = item / p.rows;
        const T* row = dense + item * p.width;
        for (std::int64_t j = 0; j < p.k; ++j) {
          const T* source = tab + (g * p.table_rows + idx[item * p.k + j]) * p.width;
          T dot = 0;
          for (std::int64_t c = 0; c < p.width; ++c) dot += row[c] * source[c];
          result[item * p.k + j] = dot;
        }
      }
    });
  });
}

void CpuBackend::sparse_scatter_add(const Tensor& weights, const Tensor& index, const Tensor& rows,
                                    const Tensor& table) {
  const SparseProblem p = check_sparse(weights, index, table, rows, "sparse_scatter_add");
  dispatch_sparse(weights, index, p.table_rows, "sparse_scatter_add", [&](auto zero, auto iz) {
    using T = decltype(zero);
    using I = decltype(iz);
    const T* w = typed<T>(weights);
    const I* idx = typed<I>(index);
    const T* dense = typed<T>(rows);
    T* tab = typed_mut<T>(table);
    // Work items are (group, column block): no two threads write the same
    // table element, and each walks the entries in order (deterministic).
    constexpr std::int64_t block = 64;
    const std::int64_t blocks = (p.width + block - 1) / block;
    parallel_for(p.groups * blocks, p.rows * p.k * block,
                 [&](std::int64_t begin, std::int64_t end) {
                   for (std::int64_t item = begin; item < end; ++item) {
                     const std::int64_t g = item / blocks;
                     const std::int64_t c0 = (item % blocks) * block;
                     const std::int64_t c1 = std::min(p.width, c0 + block);
                     for (std::int64_t r = 0; r < p.rows; ++r) {
                       const std::int64_t entry = (g * p.rows + r) * p.k;
                       const T* row = dense + (g * p.rows + r) * p.width;
                       for (std::int64_t j = 0; j < p.k; ++j) {
                         const T weight = w[entry + j];
                         if (weight == T(0)) continue;
                         T* target = tab + (g * p.table_rows + idx[entry + j]) * p.width;
                         for (std::int64_t c = c0; c < c1; ++c) target[c] += weight * row[c];
                       }
                     }
                   }
                 });
  });
}

}  // namespace topkformer::kernels::cpu
