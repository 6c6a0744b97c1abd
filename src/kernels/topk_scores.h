// The device-neutral part of the topk_scores family (backend.h): the operand
// checks, and the kernel by dense blocks of queries on any backend, which is
// the CPU's implementation and the CUDA backend's for the sizes its fused
// kernel cannot hold in shared memory.
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

// For chunk_rows queries at a time: the dense [rows, visible keys] scores of
// the block (backend.gemm), its causal mask (fill_masked), then topk_rows. The
// block is the only score buffer. Operands as checked by check_topk_scores,
// whose result is `shape`.
void topk_scores_by_blocks(Backend& backend, const TopKScoresShape& shape, const Tensor& q,
                           const Tensor& keys, double scale, const RowMask& mask, std::int64_t k,
                           std::int64_t chunk_rows, const Tensor& values, const Tensor& indices);

}  // namespace topkformer::kernels
