// Row-mask cases for the softmax and fill_masked tests of every device, and
// the mask rule of backend.h by its definition: key j of query row i (row r
// is query r % Lq of batch item r / (rows / B)) is masked iff causal and
// j > i + causal_offset, or j >= key_lengths[b].
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/reference.h"

namespace topkformer::testing {

struct MaskCase {
  std::string name;
  Shape shape;  // [B, ..., Lq, Lk]
  bool causal = false;
  std::int64_t causal_offset = 0;
  std::vector<double> key_lengths = {};  // empty: no padding mask
  DType length_dtype = DType::i64;
};

// The case's mask, key lengths (if any) on the CPU.
inline kernels::RowMask make_mask(const MaskCase& c) {
  return row_mask_of(c.causal, c.causal_offset, c.key_lengths, c.length_dtype);
}

// masked[r * Lk + j] for every row r of the scores.
inline std::vector<bool> reference_mask(const MaskCase& c) {
  const std::int64_t keys = c.shape.back(), queries = c.shape[c.shape.size() - 2];
  const std::int64_t rows = shape_numel(c.shape) / keys, rows_per_item = rows / c.shape[0];
  std::vector<bool> masked(static_cast<std::size_t>(rows * keys));
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t i = r % queries, b = r / rows_per_item;
    for (std::int64_t j = 0; j < keys; ++j) {
      masked[r * keys + j] = (c.causal && j > i + c.causal_offset) ||
                             (!c.key_lengths.empty() && double(j) >= c.key_lengths[b]);
    }
  }
  return masked;
}

}  // namespace topkformer::testing
