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

// Masks of every kind: causal with offsets (negative, past or before the
// keys), key lengths i32 and i64 (negative, 0, past Lk), both, and rows from
// 1 to 50000 keys (the CUDA kernels take a warp per row up to Lk = 1024, a
// block beyond).
inline const std::vector<MaskCase>& mask_edge_cases() {
  static const std::vector<MaskCase> cases = {
      {"unmasked_1x1", {1, 1}},
      {"unmasked_one_column", {7, 1}},
      {"unmasked_rows", {3, 17}},
      {"unmasked_rank4", {2, 3, 4, 33}},
      {"causal", {2, 3, 5, 5}, true, 0},
      {"causal_more_queries_than_keys", {2, 2, 7, 4}, true, 0},
      {"causal_offset_kv_cache", {2, 4, 7}, true, 3},
      {"causal_negative_offset", {2, 5, 5}, true, -2},              // rows 0 and 1 fully masked
      {"causal_offset_past_keys", {1, 2, 3, 6}, true, 10},          // nothing masked
      {"causal_offset_before_keys", {1, 2, 3, 6}, true, -9},        // everything masked
      {"lengths_i64", {3, 2, 4, 6}, false, 0, {6, 2, 0}},           // item 2 fully masked
      {"lengths_i32", {3, 4, 6}, false, 0, {1, 5, 9}, DType::i32},  // 9 > Lk: no mask
      {"lengths_negative", {2, 2, 3, 5}, false, 0, {-1, 3}},
      {"causal_and_lengths", {2, 2, 6, 6}, true, 0, {4, 6}},
      {"offset_and_lengths_i32", {2, 3, 4, 7}, true, 3, {5, 7}, DType::i32},
      {"warp_rows_causal", {2, 40, 1024}, true, 990},
      {"block_rows_causal", {1, 2, 40, 1500}, true, 1470},
      {"block_rows_lengths_i32", {2, 3, 2, 5000}, false, 0, {4097, 123}, DType::i32},
      {"block_rows_causal_and_lengths", {2, 1, 3, 2000}, true, 1990, {2000, 1025}},
      {"block_rows_long_lengths_i64", {2, 1, 50000}, false, 0, {50000, 31000}},
  };
  return cases;
}

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
