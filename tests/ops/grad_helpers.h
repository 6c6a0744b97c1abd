// Helpers for the finite-difference gradient tests: f64 leaves of various
// kinds (contiguous, non-contiguous views, values kept away from kinks or
// singularities), random small shapes, and an assertion around gradcheck.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "topkformer/autograd/gradcheck.h"
#include "topkformer/core/tensor.h"

namespace topkformer::testing {

// A contiguous f64 leaf with standard normal values.
inline Tensor leaf(const Shape& shape, Generator& generator) {
  return Tensor::randn(shape, generator, DType::f64).set_requires_grad(true);
}

// A leaf with values uniform in [low, high): positive inputs for log, sqrt and
// denominators.
inline Tensor uniform_leaf(const Shape& shape, Generator& generator, double low, double high) {
  return Tensor::rand(shape, generator, DType::f64, low, high).set_requires_grad(true);
}

// A leaf with |value| >= margin, so that a finite difference of step 1e-6
// never straddles the kink of relu (or a sign change of a denominator).
inline Tensor leaf_away_from_zero(const Shape& shape, Generator& generator, double margin = 0.2) {
  std::vector<double> values = Tensor::randn(shape, generator, DType::f64).to_vector<double>();
  for (double& v : values) v = std::copysign(std::abs(v) + margin, v);
  return Tensor::from_vector(shape, values).set_requires_grad(true);
}

// A leaf of `shape` that is a transposed view (last two dimensions swapped)
// of a contiguous base: a non-contiguous input for gradcheck.
inline Tensor transposed_leaf(const Shape& shape, Generator& generator) {
  Shape base_shape = shape;
  std::swap(base_shape[base_shape.size() - 1], base_shape[base_shape.size() - 2]);
  Tensor view = Tensor::randn(base_shape, generator, DType::f64).transpose(-1, -2);
  view.set_requires_grad(true);
  return view;
}

// A leaf of `shape` that takes every other element of dimension 0 of a twice
// as large base: a non-contiguous view with a gap between rows.
inline Tensor strided_leaf(const Shape& shape, Generator& generator) {
  Shape base_shape = shape;
  base_shape[0] *= 2;
  Tensor view = Tensor::randn(base_shape, generator, DType::f64).slice(0, 0, base_shape[0], 2);
  view.set_requires_grad(true);
  return view;
}

// Index tensors (i64) from literal values.
inline Tensor ids(const Shape& shape, const std::vector<std::int64_t>& values) {
  return Tensor::from_vector(shape, values);
}

// A random shape of rank in [1, max_rank] with extents in [1, max_extent].
// std::mt19937's raw output is fixed by the standard, so this is deterministic
// everywhere (unlike the standard distributions).
inline Shape random_shape(std::mt19937& rng, int max_rank, std::int64_t max_extent) {
  const int rank = 1 + static_cast<int>(rng() % static_cast<unsigned>(max_rank));
  Shape shape;
  for (int d = 0; d < rank; ++d) shape.push_back(1 + static_cast<std::int64_t>(rng() % max_extent));
  return shape;
}

// Runs gradcheck and fails with its report (worst element, analytic vs
// numeric) unless it passed. Also fails when nothing was checked, so a test
// cannot pass vacuously.
inline ::testing::AssertionResult gradcheck_passes(const autograd::GradcheckFunction& fn,
                                                   const std::vector<Tensor>& inputs,
                                                   const autograd::GradcheckOptions& options = {}) {
  std::int64_t expected_elements = 0;
  for (const Tensor& input : inputs) {
    if (input.defined() && input.requires_grad()) expected_elements += input.numel();
  }
  autograd::GradcheckReport report;
  try {
    report = autograd::gradcheck(fn, inputs, options);
  } catch (const Error& error) {
    return ::testing::AssertionFailure() << "gradcheck threw: " << error.what();
  }
  if (report.checked_elements != expected_elements || expected_elements == 0) {
    return ::testing::AssertionFailure() << "checked " << report.checked_elements << " of "
                                         << expected_elements << " elements: " << report.str();
  }
  if (!report.passed) return ::testing::AssertionFailure() << report.str();
  return ::testing::AssertionSuccess() << report.str();
}

}  // namespace topkformer::testing
