// Row gather and scatter-add by index (embeddings) on the GPU; the CPU twin is
// src/kernels/cpu/rows.cpp.
// See Note [CUDA row gathers].
#include <cstdint>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/indexed_rows.cuh"

// Note [CUDA row gathers]
// gather_rows: one thread per 16-byte pack of an output row (a copy needs no
// reduction, so the packs of all rows share the grid and short rows waste no
// lanes). Every thread checks its row's index; an out-of-range one is
// reported through an IndexFlag and the call throws after the kernel (one
// synchronisation), its row left unwritten.
// scatter_add_rows: the sorted, deterministic scatter-add of
// indexed_scatter.cu with weight 1; bit for bit the CPU's result.

namespace topkformer::kernels {

namespace {

namespace indexed = cuda::indexed;

// `packs` packs per row; with width 0 it is 1, so that every index is still checked.
template <typename T, int N, typename I>
__global__ void gather_rows_kernel(const T* __restrict__ table, const I* __restrict__ index,
                                   T* __restrict__ rows, std::int64_t total, std::int64_t packs,
                                   std::int64_t picked, std::int64_t table_rows, std::int64_t width,
                                   unsigned long long* flag) {
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t t = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += step) {
    const std::int64_t item = t / packs;
    const std::int64_t column = (t % packs) * N;
    const I i = index[item];
    if (!indexed::check_index(i, table_rows, item, flag) || column >= width) continue;
    const std::int64_t from = ((item / picked) * table_rows + static_cast<std::int64_t>(i)) * width;
    indexed::store_pack<N>(rows + item * width + column,
                           indexed::load_pack<N>(table + from + column));
  }
}

}  // namespace

void CudaBackend::gather_rows(const Tensor& src, const Tensor& index, const Tensor& rows) {
  const RowProblem p = check_rows(src, index, rows, "gather_rows");
  const cuda::Launch launch(src, {&index, &rows}, "gather_rows");
  dispatch_index(index.dtype(), "gather_rows", [&](auto index_zero) {
    using I = decltype(index_zero);
    dispatch_floating(src.dtype(), "gather_rows", [&](auto zero) {
      using T = decltype(zero);
      const std::int64_t items = p.groups * p.picked;
      if (items == 0) return;
      const indexed::IndexFlag flag(src.device(), launch.stream());
      indexed::dispatch_pack<T>(p.width, {src.raw_data(), rows.raw_data()}, [&](auto pack) {
        constexpr int N = decltype(pack)::value;
        const std::int64_t packs = std::max<std::int64_t>(p.width / N, 1);
        gather_rows_kernel<T, N, I>
            <<<cuda::grid_for(items * packs), cuda::threads_per_block, 0, launch.stream()>>>(
                typed<T>(src), typed<I>(index), typed_mut<T>(rows), items * packs, packs, p.picked,
                p.source_rows, p.width, flag.get());
        TKF_CUDA_CHECK_LAUNCH();
      });
      flag.throw_if_set(index, p.source_rows, "gather_rows");
    });
  });
}

void CudaBackend::scatter_add_rows(const Tensor& dst, const Tensor& index, const Tensor& rows) {
  const RowProblem p = check_rows(dst, index, rows, "scatter_add_rows");
  const cuda::Launch launch(dst, {&index, &rows}, "scatter_add_rows");
  const indexed::IndexedScatter problem{p.groups, p.source_rows, p.width, p.picked, 1};
  indexed::indexed_scatter_add(problem, dst, index, nullptr, rows, "scatter_add_rows", launch);
}

}  // namespace topkformer::kernels
