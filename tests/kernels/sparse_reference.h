// Cases and inputs for the sparse-product tests of every device (and the
// random indices of the rows tests).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "kernels/reference.h"

namespace topkformer::testing {

// Indices of `shape` uniform in [0, m), or (collide) only rows 0, m / 2 and
// m - 1, as values.
inline std::vector<double> random_index_values(const Shape& shape, std::int64_t m, bool collide,
                                               std::uint64_t seed) {
  std::vector<double> values =
      read_values(random_uniform(shape, DType::f64, seed, 0.0, static_cast<double>(m)));
  const double few[3] = {0.0, static_cast<double>(m / 2), static_cast<double>(m - 1)};
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = collide ? few[i % 3] : std::floor(values[i]);
  }
  return values;
}

struct SparseCase {
  std::int64_t groups, rows, k, table_rows, width;  // G, R, k, M, D
  bool collide;                                     // every index one of 3 rows
  std::string name(DType index_dtype) const {
    return "G" + std::to_string(groups) + "_R" + std::to_string(rows) + "_k" + std::to_string(k) +
           "_M" + std::to_string(table_rows) + "_D" + std::to_string(width) +
           (collide ? "_colliding_" : "_") + std::string(dtype_name(index_dtype));
  }
};

// Weights and index [G, R, k], table [G, M, D], dense rows [G, R, D], on the CPU.
struct SparseInputs {
  Tensor weights, index, table, dense;
};

// Every third weight is 0, and so is every weight of an entry that points at
// the last table row or belongs to the first dense row of a group: those
// hold inf, -inf and NaN, which must add nothing to the gather and the
// scatter.
inline SparseInputs sparse_inputs(const SparseCase& c, DType dtype, DType index_dtype,
                                  std::uint64_t seed) {
  const Shape entries{c.groups, c.rows, c.k};
  const std::vector<double> index = random_index_values(entries, c.table_rows, c.collide, seed);
  const Tensor weights = random_normal(entries, dtype, seed + 1);
  std::vector<double> w = read_values(weights);
  for (std::size_t e = 0; e < w.size(); ++e) {
    const bool first_row = (static_cast<std::int64_t>(e) / c.k) % c.rows == 0;
    if (e % 3 == 1 || first_row || index[e] == double(c.table_rows - 1)) w[e] = 0.0;
  }
  write_values(weights, w);

  const double specials[3] = {std::numeric_limits<double>::infinity(),
                              -std::numeric_limits<double>::infinity(),
                              std::numeric_limits<double>::quiet_NaN()};
  const Tensor table = random_normal({c.groups, c.table_rows, c.width}, dtype, seed + 2);
  std::vector<double> t = read_values(table);
  const Tensor dense = random_normal({c.groups, c.rows, c.width}, dtype, seed + 3);
  std::vector<double> d = read_values(dense);
  for (std::int64_t g = 0; g < c.groups; ++g) {
    for (std::int64_t col = 0; col < c.width; ++col) {
      t[((g + 1) * c.table_rows - 1) * c.width + col] = specials[col % 3];
      if (c.rows > 0) d[g * c.rows * c.width + col] = specials[(col + 1) % 3];
    }
  }
  write_values(table, t);
  write_values(dense, d);
  return {weights, tensor_of(entries, index, index_dtype), table, dense};
}

}  // namespace topkformer::testing
