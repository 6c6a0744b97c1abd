// Finite-difference gradient checks of the reductions: over all elements, over
// the last dimension (keepdim both ways), and the sum of a broadcast gradient
// back to an operand's shape.
#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <string>

#include "ops/grad_helpers.h"
#include "topkformer/autograd/tape.h"
#include "topkformer/ops.h"

namespace topkformer {
namespace {

using testing::gradcheck_passes;
using testing::leaf;

struct ReductionCase {
  std::string name;
  std::function<Tensor(const Tensor&)> fn;
};

// max and max_last included: randn values are distinct far beyond the 1e-6
// finite-difference step, so the argmax never moves during the check.
std::vector<ReductionCase> reductions() {
  return {
      {"sum", [](const Tensor& x) { return ops::sum(x); }},
      {"mean", [](const Tensor& x) { return ops::mean(x); }},
      {"max", [](const Tensor& x) { return ops::max(x); }},
      {"sum_last", [](const Tensor& x) { return ops::sum_last(x); }},
      {"sum_last keepdim", [](const Tensor& x) { return ops::sum_last(x, true); }},
      {"mean_last", [](const Tensor& x) { return ops::mean_last(x); }},
      {"mean_last keepdim", [](const Tensor& x) { return ops::mean_last(x, true); }},
      {"max_last", [](const Tensor& x) { return ops::max_last(x); }},
      {"max_last keepdim", [](const Tensor& x) { return ops::max_last(x, true); }},
  };
}

TEST(GradReduce, ReductionsOnRandomShapes) {
  Generator generator(21);
  std::mt19937 rng(21);
  for (const ReductionCase& op : reductions()) {
    for (int trial = 0; trial < 3; ++trial) {
      const Shape shape = testing::random_shape(rng, 3, 5);
      SCOPED_TRACE(op.name + " " + shape_str(shape));
      EXPECT_TRUE(
          gradcheck_passes([&](const auto& in) { return op.fn(in[0]); }, {leaf(shape, generator)}));
    }
  }
}

TEST(GradReduce, ReductionsOnNonContiguousViews) {
  Generator generator(22);
  for (const ReductionCase& op : reductions()) {
    SCOPED_TRACE(op.name);
    EXPECT_TRUE(gradcheck_passes([&](const auto& in) { return op.fn(in[0]); },
                                 {testing::transposed_leaf({2, 3, 4}, generator)}));
    EXPECT_TRUE(gradcheck_passes([&](const auto& in) { return op.fn(in[0]); },
                                 {testing::strided_leaf({3, 5}, generator)}));
  }
}

TEST(GradReduce, KeepdimDecidesTheOutputShape) {
  Generator generator(23);
  const Tensor x = Tensor::randn({2, 3, 4}, generator, DType::f64);
  EXPECT_EQ(ops::sum_last(x).shape(), (Shape{2, 3}));
  EXPECT_EQ(ops::mean_last(x, true).shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(ops::max_last(x, true).shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(ops::max(x).shape(), Shape{});
}

TEST(GradReduce, MaxLastSendsTheGradientToTheFirstMaximum) {
  // Ties are not differentiable, so gradcheck cannot cover them; the header
  // promises the first maximum.
  const Tensor x =
      Tensor::from_vector<double>({2, 3}, {1.0, 3.0, 3.0, 5.0, 2.0, 5.0}).set_requires_grad(true);
  autograd::backward(ops::sum(ops::max_last(x)));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0, 1, 0, 1, 0, 0}));
}

TEST(GradReduce, SumToShapeOfBroadcastShapes) {
  // sum_to_shape is declared among the differentiable reductions; its
  // gradient is the output gradient broadcast back to x's shape.
  Generator generator(24);
  const std::vector<Shape> targets = {{2, 3, 4}, {4}, {3, 1}, {1}, {}, {2, 1, 4}, {1, 3, 1}};
  for (const Shape& target : targets) {
    SCOPED_TRACE("[2, 3, 4] -> " + shape_str(target));
    EXPECT_TRUE(gradcheck_passes([&](const auto& in) { return ops::sum_to_shape(in[0], target); },
                                 {leaf({2, 3, 4}, generator)}));
  }
}

}  // namespace
}  // namespace topkformer
