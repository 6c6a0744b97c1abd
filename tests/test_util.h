// Helpers shared by the tests.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "topkformer/core/tensor.h"

namespace topkformer::testing {

// Runs `statement`, expects a topkformer::Error whose message contains every
// one of `fragments` (e.g. the op name and both shapes).
template <typename Statement>
void expect_error_containing(Statement statement, std::initializer_list<std::string> fragments) {
  try {
    statement();
    ADD_FAILURE() << "expected a topkformer::Error";
  } catch (const Error& error) {
    const std::string message = error.what();
    for (const std::string& fragment : fragments) {
      EXPECT_NE(message.find(fragment), std::string::npos)
          << "message '" << message << "' lacks '" << fragment << "'";
    }
  }
}

// Max |a - b| over all elements (any dtypes, any layouts, same shape). A NaN
// facing a number counts as an infinite difference (std::max alone would
// skip it, and NaN outputs would pass); equal values, NaN facing NaN and
// equal infinities differ by 0.
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  const auto x = a.to(DType::f64).to_vector<double>();
  const auto y = b.to(DType::f64).to_vector<double>();
  double worst = 0.0;
  for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
    const bool same = x[i] == y[i] || (std::isnan(x[i]) && std::isnan(y[i]));
    const double difference = same ? 0.0 : std::abs(x[i] - y[i]);
    worst = std::max(worst, std::isnan(difference) ? INFINITY : difference);
  }
  return worst;
}

}  // namespace topkformer::testing
