// exp_f32, the vectorisable exp of the f32 softmax and cross-entropy kernels,
// against the exact exponential, at its edges, and in the loop shape the
// kernels use.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/vector_math.h"

namespace topkformer::kernels::cpu {
namespace {

// Relative error in units of f32's epsilon (about one ulp).
double relative_error_in_eps(float approximate, double exact) {
  return std::abs(double(approximate) - exact) / exact / std::numeric_limits<float>::epsilon();
}

TEST(VectorMath, ExpWithinTwoUlpOverTheNormalRange) {
  double worst = 0.0;
  for (double x = -87.3; x <= 88.3; x += 0.000731) {
    const float input = static_cast<float>(x);
    worst = std::max(worst, relative_error_in_eps(exp_f32(input), std::exp(double(input))));
  }
  EXPECT_LT(worst, 2.0);
  EXPECT_GT(worst, 0.0);  // an approximation, so the sweep sees some error
}

TEST(VectorMath, ExpIsExactWhereItMatters) {
  EXPECT_EQ(exp_f32(0.0f), 1.0f);  // the row maximum of a softmax
  EXPECT_EQ(exp_f32(-std::numeric_limits<float>::infinity()), 0.0f);  // masked scores
  EXPECT_EQ(exp_f32(-100.0f), 0.0f);
  EXPECT_EQ(exp_f32(std::numeric_limits<float>::infinity()),
            std::numeric_limits<float>::infinity());
  EXPECT_EQ(exp_f32(100.0f), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(exp_f32(std::numeric_limits<float>::quiet_NaN())));  // NaN losses stay NaN
}

TEST(VectorMath, VectorisedLoopMatchesScalarCalls) {
  // The kernels call it in `#pragma omp simd` loops; the lanes must agree with single calls,
  // including the edge cases mixed into one vector.
  std::vector<float> inputs;
  for (int i = 0; i < 1000; ++i) inputs.push_back(-90.0f + 0.179f * float(i));
  inputs.push_back(-std::numeric_limits<float>::infinity());
  inputs.push_back(std::numeric_limits<float>::quiet_NaN());
  std::vector<float> outputs(inputs.size());
#pragma omp simd
  for (std::size_t i = 0; i < inputs.size(); ++i) outputs[i] = vector_exp(inputs[i]);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    SCOPED_TRACE(inputs[i]);
    const float scalar = exp_f32(inputs[i]);
    if (std::isnan(scalar)) {
      EXPECT_TRUE(std::isnan(outputs[i]));
    } else {
      EXPECT_EQ(outputs[i], scalar);
    }
  }
  EXPECT_EQ(vector_exp(0.5), std::exp(0.5));  // f64 keeps the exact exponential
}

}  // namespace
}  // namespace topkformer::kernels::cpu
