#include "kernels/topk_scores.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_backend.h"

namespace topkformer::kernels {

TopKScoresShape check_topk_scores(const Tensor& q, const Tensor& keys, const RowMask& mask,
                                  std::int64_t k, std::int64_t chunk_rows, const Tensor& values,
                                  const Tensor& indices) {
  TKF_CHECK(
      q.dim() == 3 && keys.dim() == 3 && keys.size(0) == q.size(0) && keys.size(2) == q.size(2),
      "topk_scores: expected q [G, Lq, d] and keys [G, Lk, d], got ", shape_str(q.shape()), " and ",
      shape_str(keys.shape()));
  check_same_dtype(q, keys, "topk_scores");
  TKF_CHECK(is_floating(q.dtype()), "topk_scores: expected f32 or f64, got ",
            dtype_name(q.dtype()));
  TKF_CHECK(q.is_contiguous() && keys.is_contiguous(),
            "topk_scores: q and keys must be contiguous");
  TKF_CHECK(keys.device() == q.device() && values.device() == q.device() &&
                indices.device() == q.device(),
            "topk_scores: all operands must be on ", q.device().str());
  const TopKScoresShape shape{q.size(0), q.size(1), keys.size(1), q.size(2), q.size(0)};
  TKF_CHECK(1 <= k && k <= shape.keys, "topk_scores: k = ", k, " outside [1, ", shape.keys, "]");
  TKF_CHECK(chunk_rows >= 1, "topk_scores: chunk_rows must be >= 1, got ", chunk_rows);
  const Shape expected{shape.groups, shape.queries, k};
  TKF_CHECK(values.shape() == expected && indices.shape() == expected && values.is_contiguous() &&
                indices.is_contiguous(),
            "topk_scores: values and indices must be contiguous ", shape_str(expected), ", got ",
            shape_str(values.shape()), " and ", shape_str(indices.shape()));
  check_same_dtype(q, values, "topk_scores");
  TKF_CHECK(indices.dtype() == DType::i32, "topk_scores: indices must be i32, got ",
            dtype_name(indices.dtype()));
  TopKScoresShape result = shape;
  if (mask.key_lengths.defined()) {
    const std::int64_t items = mask.key_lengths.numel();
    TKF_CHECK(items >= 1 && shape.groups % items == 0, "topk_scores: ", shape.groups,
              " groups do not divide into key_lengths' ", items, " batch items");
    result.groups_per_item = shape.groups / items;
  }
  return result;
}

std::vector<std::int64_t> key_lengths_per_group(const RowMask& mask, const TopKScoresShape& shape) {
  std::vector<std::int64_t> lengths(static_cast<std::size_t>(shape.groups), shape.keys);
  if (!mask.key_lengths.defined()) return lengths;
  const std::vector<std::int64_t> per_item =
      mask.key_lengths.to(Device::cpu()).to(DType::i64).to_vector<std::int64_t>();
  for (std::int64_t g = 0; g < shape.groups; ++g) {
    lengths[g] = std::clamp<std::int64_t>(per_item[g / shape.groups_per_item], 0, shape.keys);
  }
  return lengths;
}

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

// The CPU has no kernel of its own: it runs the blocks on its own gemm and
// topk_rows (the block is the only score buffer, its rows bound by chunk_rows).
void cpu::CpuBackend::topk_scores(const Tensor& q, const Tensor& keys, double scale,
                                  const RowMask& mask, std::int64_t k, std::int64_t chunk_rows,
                                  const Tensor& values, const Tensor& indices) {
  const TopKScoresShape shape = check_topk_scores(q, keys, mask, k, chunk_rows, values, indices);
  topk_scores_by_blocks(*this, shape, q, keys, scale, mask, k, chunk_rows, values, indices);
}

}  // namespace topkformer::kernels
