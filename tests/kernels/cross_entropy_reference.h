// Cases and targets for the cross-entropy tests of every device.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/reference.h"

namespace topkformer::testing {

struct CrossEntropyCase {
  std::int64_t rows, classes;
  double smoothing;
  std::int64_t ignore_index;
};

// Targets (7r + 2) % C, with every third row set to ignore_index; an
// in-range ignore_index also ignores the rows that target it.
inline Tensor cross_entropy_targets(const CrossEntropyCase& c, DType dtype) {
  std::vector<double> targets;
  for (std::int64_t r = 0; r < c.rows; ++r) {
    targets.push_back(r % 3 == 1 ? double(c.ignore_index) : double((7 * r + 2) % c.classes));
  }
  return tensor_of({c.rows}, targets, dtype);
}

// The case and the targets' dtype, for messages.
inline std::string cross_entropy_case_name(const CrossEntropyCase& c, DType target_dtype) {
  return std::to_string(c.rows) + "x" + std::to_string(c.classes) + " smoothing " +
         std::to_string(c.smoothing) + " ignore " + std::to_string(c.ignore_index) + " " +
         std::string(dtype_name(target_dtype));
}

}  // namespace topkformer::testing
