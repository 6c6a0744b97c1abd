#include "kernels/topk_scores_blocks.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace topkformer::kernels {

void topk_scores_by_blocks(Backend& backend, const TopKScoresShape& shape, const Tensor& q,
                           const Tensor& keys, double scale, const RowMask& mask, std::int64_t k,
                           std::int64_t chunk_rows, const Tensor& values, const Tensor& indices) {
  backend.fill(values, -INFINITY);
  backend.fill(indices, 0.0);
  const std::vector<std::int64_t> lengths = key_lengths_per_group(mask, shape);
  for (std::int64_t g = 0; g < shape.groups; ++g) {
    const Tensor group_q = q.select(0, g);
    const Tensor group_keys = keys.select(0, g);
    for (std::int64_t first = 0; first < shape.queries; first += chunk_rows) {
      const std::int64_t count = std::min(chunk_rows, shape.queries - first);
      // Keys beyond the padding length or right of the block's last causal
      // position are masked for every row: the block's scores leave them out.
      std::int64_t visible = lengths[g];
      if (mask.causal) {
        visible = std::min(visible, first + count + mask.causal_offset);
      }
      if (visible <= 0) continue;
      const Tensor scores = Tensor::empty({count, visible}, q.dtype(), q.device());
      backend.gemm(group_q.narrow(0, first, count), false, group_keys.narrow(0, 0, visible), true,
                   scores, scale, 0.0);
      if (mask.causal) {
        RowMask block_mask;
        block_mask.causal = true;
        block_mask.causal_offset = mask.causal_offset + first;
        backend.fill_masked(scores, block_mask, -INFINITY);
      }
      const std::int64_t chosen = std::min(k, visible);
      const Tensor block_values = Tensor::empty({count, chosen}, q.dtype(), q.device());
      const Tensor block_indices = Tensor::empty({count, chosen}, DType::i32, q.device());
      backend.topk_rows(scores, chosen, block_values, block_indices);
      backend.copy(block_values, values.select(0, g).narrow(0, first, count).narrow(1, 0, chosen));
      backend.copy(block_indices,
                   indices.select(0, g).narrow(0, first, count).narrow(1, 0, chosen));
    }
  }
}

}  // namespace topkformer::kernels
