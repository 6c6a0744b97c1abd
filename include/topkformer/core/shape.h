// Shapes and strides: small vectors of signed extents, printed as [2, 3, 4].
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace topkformer {

using Shape = std::vector<std::int64_t>;
using Strides = std::vector<std::int64_t>;

std::string shape_str(const Shape& shape);
std::int64_t shape_numel(const Shape& shape);
// Row-major strides (in elements) of a contiguous tensor of this shape.
Strides contiguous_strides(const Shape& shape);
// Maps a possibly negative dimension index into [0, rank); throws naming `op`.
int normalize_dim(int dim, int rank, const char* op);
// The shape both operands broadcast to (NumPy rules); throws naming `op` and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace topkformer
