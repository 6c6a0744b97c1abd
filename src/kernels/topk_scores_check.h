// The operand checks of Backend::topk_scores, shared by every device.
#pragma once

#include <cstdint>
#include <vector>

#include "topkformer/kernels/backend.h"

namespace topkformer::kernels {

struct TopKScoresShape {
  std::int64_t groups, queries, keys, head_dim, groups_per_item;
};

// Checks q [G, Lq, d], keys [G, Lk, d] (contiguous, one floating dtype and
// device), values [G, Lq, k] of that dtype and indices [G, Lq, k] i32, 1 <= k
// <= Lk, chunk_rows >= 1, and that G divides into the key_lengths' batch.
TopKScoresShape check_topk_scores(const Tensor& q, const Tensor& keys, const RowMask& mask,
                                  std::int64_t k, std::int64_t chunk_rows, const Tensor& values,
                                  const Tensor& indices);

// The padding length of each group's keys, clamped to [0, Lk] (Lk for all
// groups without key_lengths). Reads key_lengths on the host.
std::vector<std::int64_t> key_lengths_per_group(const RowMask& mask, const TopKScoresShape& shape);

}  // namespace topkformer::kernels
