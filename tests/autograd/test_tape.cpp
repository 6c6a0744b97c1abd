// The tape: gradients accumulate into leaves, a tensor used twice gets the sum
// of both contributions, no-grad mode records nothing, and backward() refuses
// what it cannot differentiate.
#include <gtest/gtest.h>

#include <cmath>

#include "test_util.h"
#include "topkformer/autograd/tape.h"
#include "topkformer/ops.h"

namespace topkformer {
namespace {

using autograd::current_tape;
using testing::expect_error_containing;

Tensor values(const Shape& shape, const std::vector<double>& v) {
  return Tensor::from_vector(shape, v);
}

class AutogradTape : public ::testing::Test {
 protected:
  // Starts from an empty tape whatever earlier tests left on it.
  void SetUp() override { current_tape().clear(); }
  void TearDown() override { current_tape().clear(); }
};

TEST_F(AutogradTape, BackwardAccumulatesIntoLeafGrads) {
  Tensor x = values({3}, {1.0, -2.0, 0.5}).set_requires_grad(true);
  const Tensor w = values({3}, {3.0, 4.0, -1.0}).set_requires_grad(true);
  autograd::backward(ops::sum(ops::mul(x, w)));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{3.0, 4.0, -1.0}));
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{1.0, -2.0, 0.5}));
  EXPECT_EQ(current_tape().size(), 0u);  // backward empties the tape

  // A second pass adds to the existing gradients instead of replacing them.
  autograd::backward(ops::sum(ops::mul(x, w)));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{6.0, 8.0, -2.0}));
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{2.0, -4.0, 1.0}));

  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST_F(AutogradTape, TensorUsedTwiceGetsTheSummedGradient) {
  // d/dx sum(x * x) = 2x; with y = tanh(x), d/dx sum(y * y + y) sums three
  // uses of y: (2y + 1)(1 - y^2).
  Tensor x = values({3}, {1.0, -2.0, 0.5}).set_requires_grad(true);
  autograd::backward(ops::sum(ops::mul(x, x)));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2.0, -4.0, 1.0}));

  x.zero_grad();
  const Tensor y = ops::tanh(x);  // a non-leaf used by two later ops
  autograd::backward(ops::sum(ops::add(ops::mul(y, y), y)));
  const std::vector<double> in = x.to_vector<double>();
  const std::vector<double> grad = x.grad().to_vector<double>();
  for (std::size_t i = 0; i < in.size(); ++i) {
    const double t = std::tanh(in[i]);
    EXPECT_NEAR(grad[i], (2.0 * t + 1.0) * (1.0 - t * t), 1e-12) << "element " << i;
  }
}

TEST_F(AutogradTape, NoGradGuardRecordsNothing) {
  const Tensor x = values({2}, {1.0, 2.0}).set_requires_grad(true);
  {
    autograd::NoGradGuard no_grad;
    const Tensor y = ops::sum(ops::exp(ops::mul(x, x)));
    EXPECT_EQ(current_tape().size(), 0u);
    EXPECT_FALSE(y.requires_grad());
    expect_error_containing([&] { autograd::backward(y); }, {"backward", "does not require"});
    {
      autograd::EnableGradGuard enable;  // nested scopes restore the outer mode
      EXPECT_TRUE(ops::neg(x).requires_grad());
    }
    EXPECT_FALSE(autograd::GradMode::enabled());
  }
  EXPECT_TRUE(autograd::GradMode::enabled());
  EXPECT_EQ(current_tape().size(), 1u);  // only the neg under EnableGradGuard
  EXPECT_TRUE(ops::neg(x).requires_grad());
}

TEST_F(AutogradTape, OpsOnTensorsWithoutGradRecordNothing) {
  const Tensor x = values({2}, {1.0, 2.0});
  const Tensor y = ops::mul(ops::exp(x), x);
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(current_tape().size(), 0u);
  expect_error_containing([&] { autograd::backward(ops::sum(y)); },
                          {"backward", "does not require gradients"});
}

TEST_F(AutogradTape, BackwardNeedsAScalarLossOrMatchingSeeds) {
  const Tensor x = values({2}, {1.0, 2.0}).set_requires_grad(true);
  const Tensor y = ops::scale(x, 3.0);
  expect_error_containing([&] { autograd::backward(y); }, {"backward", "one element", "[2]"});
  expect_error_containing([&] { autograd::backward({y}, {Tensor::ones({3}, DType::f64)}); },
                          {"backward", "[2]", "[3]"});
  // Explicit seeds weight the outputs.
  autograd::backward({y}, {values({2}, {1.0, -1.0})});
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{3.0, -3.0}));
}

TEST_F(AutogradTape, LeafGradIsAPrivateContiguousCopy) {
  // Optimizers modify leaf gradients in place; the gradient must not share
  // storage with the seed or with anything the graph still refers to.
  const Tensor x = values({2, 3}, {1, 2, 3, 4, 5, 6}).set_requires_grad(true);
  const Tensor seed = values({3, 2}, {1, 2, 3, 4, 5, 6});
  const Tensor y = ops::transpose(x, 0, 1);
  autograd::backward({y}, {seed});
  ASSERT_TRUE(x.grad().defined());
  EXPECT_TRUE(x.grad().is_contiguous());
  EXPECT_FALSE(x.grad().shares_storage_with(seed));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1, 3, 5, 2, 4, 6}));
}

TEST_F(AutogradTape, BranchesThatDoNotReachTheLossGetNoGradient) {
  const Tensor x = values({2}, {1.0, 2.0}).set_requires_grad(true);
  const Tensor unused = values({2}, {3.0, 4.0}).set_requires_grad(true);
  const Tensor dead_end = ops::exp(unused);  // recorded, but not part of the loss
  autograd::backward(ops::sum(x));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1.0, 1.0}));
  EXPECT_FALSE(unused.grad().defined());
  EXPECT_EQ(current_tape().size(), 0u);
}

}  // namespace
}  // namespace topkformer
