// Shared by the module, variant-contract and memory tests: random
// leaves and parameters, and outputs with named gradients to compare.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "attention_helpers.h"
#include "topkformer/autograd/grad_mode.h"
#include "topkformer/autograd/tape.h"
#include "topkformer/core/allocator.h"
#include "topkformer/nn/module.h"

namespace topkformer::testing {

using nn::NamedTensors;

// normal(0, std) values as a gradient-requiring leaf.
inline Tensor random_leaf(const Shape& shape, Generator& generator, DType dtype = DType::f64,
                          double std = 1.0) {
  Tensor leaf = Tensor::randn(shape, generator, dtype, 0.0, std);
  leaf.set_requires_grad(true);
  return leaf;
}

// Overwrites every parameter (biases included) in place with normal(0, std)
// from `seed`. The default init (weights 0.02, biases 0) makes attention
// nearly uniform and the biases zero, which would hide masking and bias bugs.
inline void randomize_parameters(const nn::Module& module, std::uint64_t seed, double std) {
  Generator generator(seed);
  for (const auto& [name, parameter] : module.named_parameters()) {
    Tensor target = parameter;
    target.copy_(Tensor::randn(parameter.shape(), generator, parameter.dtype(), 0.0, std));
  }
}

// A module's parameters followed by extra named leaves (the inputs).
inline NamedTensors leaves_of(const nn::Module& module, const NamedTensors& inputs) {
  NamedTensors leaves = module.named_parameters();
  leaves.insert(leaves.end(), inputs.begin(), inputs.end());
  return leaves;
}

// An output and the gradients of sum(out * w), for a fixed random w, with
// respect to named leaves.
struct NamedResults {
  Tensor out;
  NamedTensors grads;
};

inline NamedResults run_named(const std::function<Tensor()>& forward, const NamedTensors& leaves,
                              std::uint64_t seed = 99) {
  for (const auto& [name, leaf] : leaves) Tensor(leaf).zero_grad();
  const Tensor out = forward();
  Generator generator(seed);
  autograd::backward({out}, {Tensor::randn(out.shape(), generator, out.dtype())});
  NamedResults results{out.detach(), {}};
  for (const auto& [name, leaf] : leaves) results.grads.emplace_back(name, leaf.grad());
  return results;
}

// Compares outputs and gradients to `tolerance` relative. Gradients named in
// `zero_gradients` are analytically zero, so that both are rounding noise
// and a relative error means nothing: those must be below `tolerance` in
// absolute value instead.
inline void expect_same_named_results(const NamedResults& got, const NamedResults& expected,
                                      double tolerance,
                                      const std::vector<std::string>& zero_gradients = {}) {
  EXPECT_LE(relative_error(got.out, expected.out), tolerance) << "output";
  ASSERT_EQ(got.grads.size(), expected.grads.size());
  for (std::size_t i = 0; i < got.grads.size(); ++i) {
    const auto& [name, grad] = got.grads[i];
    const Tensor& reference = expected.grads[i].second;
    EXPECT_EQ(name, expected.grads[i].first);
    ASSERT_TRUE(grad.defined()) << "no gradient for " << name;
    ASSERT_TRUE(reference.defined()) << "no reference gradient for " << name;
    if (std::find(zero_gradients.begin(), zero_gradients.end(), name) != zero_gradients.end()) {
      const Tensor zero = Tensor::zeros(grad.shape(), grad.dtype());
      EXPECT_LE(max_abs_diff(grad, zero), tolerance) << "gradient of " << name;
      EXPECT_LE(max_abs_diff(reference, zero), tolerance) << "reference gradient of " << name;
    } else {
      EXPECT_LE(relative_error(grad, reference), tolerance) << "gradient of " << name;
    }
  }
}

// The forward pass only, without recording on the tape.
inline Tensor forward_only(const std::function<Tensor()>& forward) {
  autograd::NoGradGuard no_grad;
  return forward();
}

// Peak bytes above what was held before (inputs and weights), for one
// forward + backward pass.
inline std::int64_t peak_of(const std::function<Tensor()>& forward,
                            const std::vector<Tensor>& leaves) {
  Allocator& allocator = allocator_for(Device::cpu());
  const std::int64_t before = allocator.current_bytes();
  allocator.reset_peak();
  {
    const Tensor out = forward();
    autograd::backward({out}, {Tensor::ones(out.shape(), out.dtype())});
  }
  const std::int64_t peak = allocator.peak_bytes() - before;
  for (Tensor leaf : leaves) leaf.zero_grad();
  return peak;
}

// sqrt(sum (a - b)^2) / sqrt(sum b^2): an error that averages over elements.
inline double frobenius_relative_error(const Tensor& a, const Tensor& b) {
  const auto x = a.to(DType::f64).to_vector<double>();
  const auto y = b.to(DType::f64).to_vector<double>();
  EXPECT_EQ(x.size(), y.size());
  double difference = 0.0, norm = 1e-300;
  for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
    difference += (x[i] - y[i]) * (x[i] - y[i]);
    norm += y[i] * y[i];
  }
  return std::sqrt(difference / norm);
}

}  // namespace topkformer::testing
