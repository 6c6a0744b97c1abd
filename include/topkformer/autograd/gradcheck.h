// Finite-difference gradient checks (central differences, f64).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "topkformer/core/tensor.h"

namespace topkformer::autograd {

struct GradcheckOptions {
  double step = 1e-6;         // finite-difference step
  double tolerance = 1e-6;    // on the relative error below
  std::uint64_t seed = 1234;  // for the random projection of the output
};

struct GradcheckReport {
  bool passed = true;
  // Worst |analytic - numeric| / max(1, |numeric|) over all checked elements.
  double max_relative_error = 0.0;
  int input = -1;             // which input it was in
  std::int64_t element = -1;  // its logical (row-major) index in that input
  double analytic = 0.0;
  double numeric = 0.0;
  std::int64_t checked_elements = 0;
  std::string str() const;
};

using GradcheckFunction = std::function<Tensor(const std::vector<Tensor>&)>;

// Checks the gradients of fn at `inputs` for every f64 input that requires
// gradients. The output is reduced to sum(fn(inputs) * w) with a fixed random
// w, so every output element contributes with its own weight. Inputs may be
// non-contiguous views, but must not overlap themselves (no expanded views).
GradcheckReport gradcheck(const GradcheckFunction& fn, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace topkformer::autograd
