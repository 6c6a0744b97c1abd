// Problems and inputs for the causal linear attention tests of every device:
// G groups of L positions with m positive features (phi_q, phi_k) and values
// of width dv.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/reference.h"

namespace topkformer::testing {

struct LinearAttentionProblem {
  std::int64_t groups, length, features, width;  // G, L, m, dv
  std::string name() const {
    return "G=" + std::to_string(groups) + " L=" + std::to_string(length) +
           " m=" + std::to_string(features) + " dv=" + std::to_string(width);
  }
  Shape feature_shape() const { return {groups, length, features}; }
  Shape value_shape() const { return {groups, length, width}; }
};

struct LinearAttentionInputs {
  Tensor phi_q, phi_k, v;  // on the CPU
};

// Positive features uniform in [feature_low, 1) (seeds seed, seed + 1) and
// values N(0, 1) (seed + 2). With zero_prefix > 0 the last group's first
// zero_prefix phi_k rows are 0, so its denominators are 0 there.
inline LinearAttentionInputs linear_attention_inputs(const LinearAttentionProblem& p, DType dtype,
                                                     std::uint64_t seed, double feature_low,
                                                     std::int64_t zero_prefix = 0) {
  LinearAttentionInputs in{random_uniform(p.feature_shape(), dtype, seed, feature_low, 1.0),
                           random_uniform(p.feature_shape(), dtype, seed + 1, feature_low, 1.0),
                           random_normal(p.value_shape(), dtype, seed + 2)};
  if (zero_prefix > 0) {
    std::vector<double> k = read_values(in.phi_k);
    const std::int64_t first = (p.groups - 1) * p.length * p.features;
    std::fill(k.begin() + first, k.begin() + first + zero_prefix * p.features, 0.0);
    write_values(in.phi_k, k);
  }
  return in;
}

}  // namespace topkformer::testing
