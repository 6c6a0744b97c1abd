// Cases for the sum_to tests of every device.
#pragma once

#include <initializer_list>
#include <utility>
#include <vector>

#include "topkformer/core/shape.h"

namespace topkformer::testing {

// Pairs (x shape, out shape) of sum_to, where each out dimension is x's or
// 1: leading, middle, trailing and mixed dimensions summed on ranks 2 to 4,
// all of them, none, and an empty sum (which is 0); then `more`, the shapes
// that matter to one device's kernels.
inline std::vector<std::pair<Shape, Shape>> sum_to_broadcast_patterns(
    std::initializer_list<std::pair<Shape, Shape>> more) {
  std::vector<std::pair<Shape, Shape>> patterns = {
      {{4, 5, 6}, {1, 5, 6}}, {{4, 5, 6}, {4, 1, 6}},       {{4, 5, 6}, {4, 5, 1}},
      {{4, 5, 6}, {1, 5, 1}}, {{4, 5, 6}, {1, 1, 1}},       {{4, 5, 6}, {4, 5, 6}},
      {{17, 3}, {1, 3}},      {{17, 3}, {17, 1}},           {{2, 3, 4, 5}, {1, 1, 4, 5}},
      {{1, 1}, {1, 1}},       {{2, 3, 4, 5}, {2, 1, 4, 1}}, {{0, 3}, {1, 3}}};
  patterns.insert(patterns.end(), more);
  return patterns;
}

}  // namespace topkformer::testing
