// Row gather and scatter-add by index: embeddings and the sparse products of
// top-k attention.
#include "kernels/rows.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/parallel.h"

namespace topkformer::kernels::cpu {

void CpuBackend::gather_rows(const Tensor& src, const Tensor& index, const Tensor& rows) {
  const RowProblem p = check_rows(src, index, rows, "gather_rows");
  dispatch_index(index.dtype(), "gather_rows", [&](auto index_zero) {
    using I = decltype(index_zero);
    const I* idx = typed<I>(index);
    check_index_range(idx, index.numel(), p.source_rows, "gather_rows");
    dispatch_floating(src.dtype(), "gather_rows", [&](auto zero) {
      using T = decltype(zero);
      const T* table = typed<T>(src);
      T* out = typed_mut<T>(rows);
      parallel_for(p.groups * p.picked, p.width, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t item = begin; item < end; ++item) {
          const std::int64_t g = item / p.picked;
          const T* from = table + (g * p.source_rows + idx[item]) * p.width;
          std::copy(from, from + p.width, out + item * p.width);
        }
      });
    });
  });
}

void CpuBackend::scatter_add_rows(const Tensor& dst, const Tensor& index, const Tensor& rows) {
  const RowProblem p = check_rows(dst, index, rows, "scatter_add_rows");
  dispatch_index(index.dtype(), "scatter_add_rows", [&](auto index_zero) {
    using I = decltype(index_zero);
    const I* idx = typed<I>(index);
    check_index_range(idx, index.numel(), p.source_rows, "scatter_add_rows");
    dispatch_floating(dst.dtype(), "scatter_add_rows", [&](auto zero) {
      using T = decltype(zero);
      T* table = typed_mut<T>(dst);
      const T* in = typed<T>(rows);
      // Work items are (group, column block): no two threads touch the same
      // destination element, and each adds its rows in index order, so the
      // result is deterministic.
      constexpr std::int64_t block = 64;
      const std::int64_t blocks = (p.width + block - 1) / block;
      parallel_for(p.groups * blocks, p.picked * block, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t item = begin; item < end; ++item) {
          const std::int64_t g = item / blocks;
          const std::int64_t c0 = (item % blocks) * block;
          const std::int64_t c1 = std::min(p.width, c0 + block);
          for (std::int64_t n = 0; n < p.picked; ++n) {
            T* to = table + (g * p.source_rows + idx[g * p.picked + n]) * p.width;
            const T* from = in + (g * p.picked + n) * p.width;
            for (std::int64_t c = c0; c < c1; ++c) to[c] += from[c];
          }
        }
      });
    });
  });
}

}  // namespace topkformer::kernels::cpu
