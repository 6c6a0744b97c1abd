// gradcheck itself: it must catch a wrong gradient and say where it is, so
// that the op tests built on it cannot pass vacuously.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "ops/grad_helpers.h"
#include "test_util.h"
#include "topkformer/autograd/function.h"
#include "topkformer/ops.h"

namespace topkformer {
namespace {

using autograd::gradcheck;
using autograd::GradcheckReport;
using testing::expect_error_containing;

// x^3 whose backward is right except that it adds `error` to the gradient of
// logical element `bad_element` (no error when bad_element < 0).
class CubeWithBadElement final : public autograd::Function {
 public:
  CubeWithBadElement(std::int64_t bad_element, double error)
      : bad_element_(bad_element), error_(error) {}
  std::string name() const override { return "cube_with_bad_element"; }
  std::vector<Tensor> forward(const std::vector<Tensor>& inputs) override {
    x_ = inputs[0];
    return {ops::mul(ops::mul(x_, x_), x_)};
  }
  std::vector<Tensor> backward(const std::vector<Tensor>& grad_outputs) override {
    // A fresh contiguous tensor in logical order, so data()[e] is element e.
    Tensor dx = ops::scale(ops::mul(ops::mul(x_, x_), grad_outputs[0]), 3.0).contiguous();
    if (bad_element_ >= 0) dx.data<double>()[bad_element_] += error_;
    return {dx};
  }

 private:
  std::int64_t bad_element_;
  double error_;
  Tensor x_;
};

// a * cube(b): two inputs, so the report has to name the right one.
autograd::GradcheckFunction product_with_cube(std::int64_t bad_element, double error) {
  return [=](const std::vector<Tensor>& in) {
    const Tensor cubed =
        autograd::apply(std::make_shared<CubeWithBadElement>(bad_element, error), {in[1]})[0];
    return ops::mul(in[0], cubed);
  };
}

TEST(AutogradGradcheck, PassesACorrectGradient) {
  Generator generator(111);
  const std::vector<Tensor> inputs = {testing::leaf({3, 4}, generator),
                                      testing::leaf({3, 4}, generator)};
  const GradcheckReport report = gradcheck(product_with_cube(-1, 0.0), inputs);
  EXPECT_TRUE(report.passed) << report.str();
  EXPECT_EQ(report.checked_elements, 24);
  EXPECT_LE(report.max_relative_error, 1e-6);
}

TEST(AutogradGradcheck, ReportsTheInputAndElementOfAWrongGradient) {
  Generator generator(112);
  const std::vector<Tensor> inputs = {testing::leaf({3, 4}, generator),
                                      testing::leaf({3, 4}, generator)};
  const GradcheckReport report = gradcheck(product_with_cube(7, 0.5), inputs);
  EXPECT_FALSE(report.passed) << report.str();
  EXPECT_EQ(report.input, 1);
  EXPECT_EQ(report.element, 7);
  EXPECT_NEAR(report.analytic - report.numeric, 0.5, 1e-6);
  EXPECT_NE(report.str().find("FAILED"), std::string::npos) << report.str();
  EXPECT_NE(report.str().find("input 1 element 7"), std::string::npos) << report.str();

  // An analytic gradient that is too small is as wrong as one too large.
  const GradcheckReport too_small = gradcheck(product_with_cube(2, -0.5), inputs);
  EXPECT_FALSE(too_small.passed) << too_small.str();
  EXPECT_EQ(too_small.input, 1);
  EXPECT_EQ(too_small.element, 2);
}

TEST(AutogradGradcheck, CatchesASmallErrorOnANonContiguousInput) {
  // The element is a logical index: on a transposed view it differs from the
  // storage position, and the numeric side must perturb the right one.
  Generator generator(113);
  const std::vector<Tensor> inputs = {testing::leaf({3, 4}, generator),
                                      testing::transposed_leaf({3, 4}, generator)};
  const GradcheckReport clean = gradcheck(product_with_cube(-1, 0.0), inputs);
  EXPECT_TRUE(clean.passed) << clean.str();
  const GradcheckReport report = gradcheck(product_with_cube(5, 1e-4), inputs);
  EXPECT_FALSE(report.passed) << report.str();
  EXPECT_EQ(report.input, 1);
  EXPECT_EQ(report.element, 5);
}

TEST(AutogradGradcheck, ToleranceDecidesTheVerdict) {
  Generator generator(114);
  const std::vector<Tensor> inputs = {testing::leaf({2, 2}, generator),
                                      testing::leaf({2, 2}, generator)};
  autograd::GradcheckOptions loose;
  loose.tolerance = 10.0;
  EXPECT_TRUE(gradcheck(product_with_cube(0, 0.5), inputs, loose).passed);
  EXPECT_FALSE(gradcheck(product_with_cube(0, 0.5), inputs).passed);
}

TEST(AutogradGradcheck, RejectsInputsItCannotCheck) {
  Generator generator(115);
  const auto identity = [](const std::vector<Tensor>& in) { return ops::scale(in[0], 1.0); };
  const Tensor f32 = Tensor::randn({3}, generator).set_requires_grad(true);
  expect_error_containing([&] { gradcheck(identity, {f32}); }, {"gradcheck", "f64", "f32"});
  const Tensor leaf = testing::leaf({3}, generator);
  const Tensor non_leaf = ops::neg(leaf);
  expect_error_containing([&] { gradcheck(identity, {non_leaf}); }, {"gradcheck", "leaf"});
  const Tensor constant = Tensor::randn({3}, generator, DType::f64);
  expect_error_containing([&] { gradcheck(identity, {constant}); },
                          {"gradcheck", "does not require grad"});
  autograd::current_tape().clear();  // the neg above is never differentiated
}

}  // namespace
}  // namespace topkformer
