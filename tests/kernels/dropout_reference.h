// Inputs for the dropout tests of every device: sparse rows picked from a
// dense matrix, for the column addressing.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/reference.h"

namespace topkformer::testing {

// Sparse rows [rows, kept] picked from a dense [rows, keys] input and its
// dropout output (on any device): entry j of row r is key
// (r * row_step + j * entry_step) % keys, out of order as top-k leaves them.
// With `columns` as the addressing's columns (row_words = keys), dropout of
// `inputs` must give `outputs`: each entry dropped exactly when its dense
// element is.
// The addressing of query rows first..first + chunk of each [Lq, Lk] block,
// taken as a [G, chunk, Lk] tensor: it draws the words of the whole matrix.
inline kernels::DropoutAddressing chunk_addressing(std::int64_t first, std::int64_t chunk,
                                                   std::int64_t queries, std::int64_t keys) {
  kernels::DropoutAddressing addressing;
  addressing.rows_per_block = chunk;
  addressing.block_stride = queries;
  addressing.first_row = first;
  addressing.row_words = keys;
  return addressing;
}

struct PickedColumns {
  std::vector<double> columns, inputs, outputs;  // each [rows, kept], row-major
};

inline PickedColumns pick_columns(const Tensor& dense, const Tensor& dense_out, std::int64_t kept,
                                  std::int64_t row_step, std::int64_t entry_step) {
  const std::int64_t rows = dense.size(0), keys = dense.size(1);
  const std::vector<double> in = read_values(dense.to(Device::cpu()));
  const std::vector<double> out = read_values(dense_out.to(Device::cpu()));
  PickedColumns picked;
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t j = 0; j < kept; ++j) {
      const std::int64_t c = (r * row_step + j * entry_step) % keys;
      picked.columns.push_back(double(c));
      picked.inputs.push_back(in[r * keys + c]);
      picked.outputs.push_back(out[r * keys + c]);
    }
  }
  return picked;
}

}  // namespace topkformer::testing
