// Backend::topk_scores by dense blocks of queries, on any backend: the CPU's
// implementation, and the CUDA backend's for the sizes its fused kernel cannot
// hold in shared memory.
#pragma once

#include <cstdint>

#include "kernels/topk_scores_check.h"
#include "topkformer/kernels/backend.h"

namespace topkformer::kernels {

// For chunk_rows queries at a time: the dense [rows, visible keys] scores of
// the block (backend.gemm), its causal mask (fill_masked), then topk_rows. The
// block is the only score buffer. Operands as checked by check_topk_scores,
// whose result is `shape`.
void topk_scores_by_blocks(Backend& backend, const TopKScoresShape& shape, const Tensor& q,
                           const Tensor& keys, double scale, const RowMask& mask, std::int64_t k,
                           std::int64_t chunk_rows, const Tensor& values, const Tensor& indices);

}  // namespace topkformer::kernels
