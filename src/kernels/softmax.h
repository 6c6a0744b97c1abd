// The device-neutral part of the softmax family (backend.h): the rule of a
// RowMask as arithmetic on row numbers, shared by the softmax-family kernels
// of every device (the CUDA kernels call it on the GPU).
#pragma once

#include <cstdint>

#include "kernels/host_device.h"
#include "topkformer/kernels/backend.h"

// Note [row masks]
// Both masks leave a prefix of each row valid: the causal mask cuts row r at
// query r % Lq + causal_offset, the padding mask at its batch item's length.

namespace topkformer::kernels {

struct RowMaskRule {
  std::int64_t keys = 0;           // Lk: the row length
  std::int64_t queries = 1;        // Lq
  std::int64_t rows_per_item = 1;  // rows of one batch item (rows / B)
  bool causal = false;
  std::int64_t causal_offset = 0;

  // The entry of key_lengths that applies to row r.
  TKF_HOST_DEVICE std::int64_t item(std::int64_t row) const { return row / rows_per_item; }

  // How many leading keys of row r are not masked, in [0, Lk]; key_length is
  // its item's entry of key_lengths (Lk without a padding mask).
  TKF_HOST_DEVICE std::int64_t valid_prefix(std::int64_t row, std::int64_t key_length) const {
    std::int64_t valid = key_length < keys ? key_length : keys;
    if (causal) {
      const std::int64_t visible = row % queries + causal_offset + 1;
      if (visible < valid) valid = visible;
    }
    return valid > 0 ? valid : 0;
  }
};

// The rule of `mask` over scores x[B, ..., Lq, Lk] (x non-empty). Checks that
// key_lengths, if given, has one entry per batch item (B = x.size(0)) but not
// where it lives: each device reads it its own way. `op` names the kernel.
RowMaskRule row_mask_rule(const Tensor& x, const RowMask& mask, const char* op);

}  // namespace topkformer::kernels
