// Top-k attention scores on the CPU: a block of queries at a time, the dense
// [rows, visible keys] scores of the block, then a row-wise selection. The
// block is the only score buffer (its rows bound by chunk_rows).
#include "cpu_backend.h"
#include "kernels/topk_scores_blocks.h"
#include "kernels/topk_scores_check.h"

namespace topkformer::kernels {

void CpuBackend::topk_scores(const Tensor& q, const Tensor& keys, double scale, const RowMask& mask,
                             std::int64_t k, std::int64_t chunk_rows, const Tensor& values,
                             const Tensor& indices) {
  const TopKScoresShape shape = check_topk_scores(q, keys, mask, k, chunk_rows, values, indices);
  topk_scores_by_blocks(*this, shape, q, keys, scale, mask, k, chunk_rows, values, indices);
}

}  // namespace topkformer::kernels
