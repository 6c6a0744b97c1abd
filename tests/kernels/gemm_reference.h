// Operands for the gemm tests of every device: matrices in row-major,
// column-major and padded layouts.
#pragma once

#include <cstdint>

#include "kernels/reference.h"

namespace topkformer::testing {

enum class MatrixLayout { row_major, column_major, padded_row_major, padded_column_major };
inline constexpr MatrixLayout matrix_layouts[] = {
    MatrixLayout::row_major, MatrixLayout::column_major, MatrixLayout::padded_row_major,
    MatrixLayout::padded_column_major};

// An operand of logical shape batch + [rows, cols] with N(0, 1) values:
// column-major layouts are transpose views, padded ones the middle columns
// of a wider matrix (a leading dimension larger than the width). The values
// are drawn on the CPU and moved to `device` before the view is taken, so
// every device gets the same values in the same layout.
inline Tensor matrix(const Shape& batch, std::int64_t rows, std::int64_t cols, MatrixLayout layout,
                     DType dtype, std::uint64_t seed, Device device = Device::cpu()) {
  const auto draw = [&](std::int64_t r, std::int64_t c) {
    Shape shape = batch;
    shape.push_back(r);
    shape.push_back(c);
    return random_normal(shape, dtype, seed).to(device);
  };
  const int last = static_cast<int>(batch.size()) + 1;
  switch (layout) {
    case MatrixLayout::row_major:
      return draw(rows, cols);
    case MatrixLayout::column_major:
      return draw(cols, rows).transpose(last - 1, last);
    case MatrixLayout::padded_row_major:
      return draw(rows, cols + 3).narrow(last, 1, cols);
    case MatrixLayout::padded_column_major:
      return draw(cols, rows + 3).narrow(last, 2, rows).transpose(last - 1, last);
  }
  return {};
}

}  // namespace topkformer::testing
