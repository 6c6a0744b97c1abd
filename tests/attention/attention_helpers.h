// Shared inputs and comparisons for the attention-variant tests.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "test_util.h"
#include "topkformer/attention/functional.h"
#include "topkformer/autograd/tape.h"

namespace topkformer::testing {

struct AttentionInputs {
  Tensor q, k, v;
};

// Random q [B, H, Lq, d], k and v [B, H, Lk, d] as gradient-requiring leaves.
inline AttentionInputs random_attention_inputs(std::int64_t batch, std::int64_t heads,
                                               std::int64_t queries, std::int64_t keys,
                                               std::int64_t dim, DType dtype, std::uint64_t seed) {
  Generator generator(seed);
  AttentionInputs in{Tensor::randn({batch, heads, queries, dim}, generator, dtype),
                     Tensor::randn({batch, heads, keys, dim}, generator, dtype),
                     Tensor::randn({batch, heads, keys, dim}, generator, dtype)};
  in.q.set_requires_grad(true);
  in.k.set_requires_grad(true);
  in.v.set_requires_grad(true);
  return in;
}

// A context for two batch items with key lengths {first, second}, an optional
// causal mask and a scale other than 1 (so scaling bugs show).
inline attention::AttentionContext masked_context(bool causal, std::int64_t first,
                                                  std::int64_t second, double scale) {
  attention::AttentionContext context;
  context.causal = causal;
  context.key_lengths = Tensor::from_vector<std::int64_t>({2}, {first, second});
  context.scale = scale;
  return context;
}

using AttentionFunction = std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)>;

// The output of fn and the gradients of sum(out * w) for a fixed random w.
struct OutputAndGrads {
  Tensor out, dq, dk, dv;
};

inline OutputAndGrads run_with_grads(const AttentionFunction& fn, const AttentionInputs& in,
                                     std::uint64_t seed = 99) {
  for (Tensor t : {in.q, in.k, in.v}) t.zero_grad();
  const Tensor out = fn(in.q, in.k, in.v);
  Generator generator(seed);
  const Tensor weights = Tensor::randn(out.shape(), generator, out.dtype());
  autograd::backward({out}, {weights});
  return {out.detach(), in.q.grad(), in.k.grad(), in.v.grad()};
}

// Max |a - b| / (max |b| + tiny): one relative error for a whole tensor.
inline double relative_error(const Tensor& a, const Tensor& b) {
  const auto y = b.to(DType::f64).to_vector<double>();
  double scale = 1e-30;
  for (double value : y) scale = std::max(scale, std::abs(value));
  return max_abs_diff(a, b) / scale;
}

inline void expect_same_results(const OutputAndGrads& got, const OutputAndGrads& expected,
                                double tolerance) {
  EXPECT_LE(relative_error(got.out, expected.out), tolerance) << "output";
  EXPECT_LE(relative_error(got.dq, expected.dq), tolerance) << "dq";
  EXPECT_LE(relative_error(got.dk, expected.dk), tolerance) << "dk";
  EXPECT_LE(relative_error(got.dv, expected.dv), tolerance) << "dv";
}

}  // namespace topkformer::testing
