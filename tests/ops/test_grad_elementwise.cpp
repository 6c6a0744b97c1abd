// Finite-difference gradient checks of the elementwise ops: the binary ops
// under every broadcasting pattern (the backward must sum the gradient back to
// each operand's shape), the unary ops on random shapes, and non-contiguous
// leaves.
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
using testing::leaf_away_from_zero;
using testing::uniform_leaf;

using BinaryFn = std::function<Tensor(const Tensor&, const Tensor&)>;

struct BinaryOpCase {
  std::string name;
  BinaryFn fn;
};

const std::vector<BinaryOpCase>& binary_ops() {
  static const std::vector<BinaryOpCase> cases = {
      {"add", [](const Tensor& a, const Tensor& b) { return ops::add(a, b); }},
      {"sub", [](const Tensor& a, const Tensor& b) { return ops::sub(a, b); }},
      {"mul", [](const Tensor& a, const Tensor& b) { return ops::mul(a, b); }},
      {"div", [](const Tensor& a, const Tensor& b) { return ops::div(a, b); }},
  };
  return cases;
}

// Operand shape pairs: equal shapes, a trailing vector, a column, a single
// element, a scalar, both sides broadcasting at once, and the small operand
// on the left.
const std::vector<std::pair<Shape, Shape>>& broadcast_pairs() {
  static const std::vector<std::pair<Shape, Shape>> pairs = {
      {{2, 3, 4}, {2, 3, 4}}, {{2, 3, 4}, {4}}, {{2, 3, 4}, {3, 1}},
      {{2, 3, 4}, {1}},       {{2, 3, 4}, {}},  {{3, 1}, {1, 4}},
      {{4}, {2, 3, 4}},       {{}, {2, 3}},     {{2, 1, 4}, {3, 1}},
  };
  return pairs;
}

TEST(GradElementwise, BinaryOpsWithBroadcasting) {
  Generator generator(11);
  for (const BinaryOpCase& op : binary_ops()) {
    for (const auto& [shape_a, shape_b] : broadcast_pairs()) {
      SCOPED_TRACE(op.name + " " + shape_str(shape_a) + " with " + shape_str(shape_b));
      const Tensor a = leaf(shape_a, generator);
      // Denominators stay away from 0 so that 1/b is smooth at the step size.
      const Tensor b = leaf_away_from_zero(shape_b, generator, 0.5);
      EXPECT_TRUE(gradcheck_passes([&](const auto& in) { return op.fn(in[0], in[1]); }, {a, b}));
    }
  }
}

TEST(GradElementwise, BinaryOpsWhenOnlyOneOperandRequiresGrad) {
  // mul and div skip the gradient of an operand that does not require it;
  // the other operand's gradient must still be right.
  Generator generator(12);
  for (const BinaryOpCase& op : binary_ops()) {
    SCOPED_TRACE(op.name);
    const Tensor a = leaf({3, 4}, generator);
    const Tensor constant = Tensor::rand({4}, generator, DType::f64, 0.5, 2.0);
    EXPECT_TRUE(
        gradcheck_passes([&](const auto& in) { return op.fn(in[0], in[1]); }, {a, constant}));
    EXPECT_TRUE(gradcheck_passes([&](const auto& in) { return op.fn(in[1], in[0]); },
                                 {uniform_leaf({3, 4}, generator, 0.5, 2.0), constant.clone()}));
  }
}

TEST(GradElementwise, BinaryOpsOnNonContiguousViews) {
  Generator generator(13);
  for (const BinaryOpCase& op : binary_ops()) {
    SCOPED_TRACE(op.name);
    const Tensor a = testing::transposed_leaf({3, 4}, generator);
    Tensor b = Tensor::rand({6, 4}, generator, DType::f64, 0.5, 2.0).slice(0, 0, 6, 2);
    b.set_requires_grad(true);
    ASSERT_FALSE(a.is_contiguous());
    ASSERT_FALSE(b.is_contiguous());
    EXPECT_TRUE(gradcheck_passes([&](const auto& in) { return op.fn(in[0], in[1]); }, {a, b}));
  }
}

TEST(GradElementwise, SameTensorOnBothSides) {
  // x * x and x / x: both operands are the same leaf, so its gradient is the
  // sum of the two contributions.
  Generator generator(14);
  const Tensor x = leaf_away_from_zero({2, 3}, generator, 0.5);
  EXPECT_TRUE(gradcheck_passes([](const auto& in) { return ops::mul(in[0], in[0]); }, {x}));
  EXPECT_TRUE(gradcheck_passes([](const auto& in) { return ops::div(in[0], in[0]); }, {x}));
}

struct UnaryOpCase {
  std::string name;
  std::function<Tensor(const Tensor&)> fn;
  // Builds a leaf in the op's smooth domain.
  std::function<Tensor(const Shape&, Generator&)> make_input;
};

std::vector<UnaryOpCase> unary_ops() {
  const auto normal = [](const Shape& s, Generator& g) { return leaf(s, g); };
  const auto positive = [](const Shape& s, Generator& g) { return uniform_leaf(s, g, 0.3, 3.0); };
  const auto off_zero = [](const Shape& s, Generator& g) { return leaf_away_from_zero(s, g); };
  return {
      {"scale", [](const Tensor& x) { return ops::scale(x, -2.5); }, normal},
      {"add_scalar", [](const Tensor& x) { return ops::add_scalar(x, 0.75); }, normal},
      {"neg", [](const Tensor& x) { return ops::neg(x); }, normal},
      {"exp", [](const Tensor& x) { return ops::exp(x); }, normal},
      {"log", [](const Tensor& x) { return ops::log(x); }, positive},
      {"sqrt", [](const Tensor& x) { return ops::sqrt(x); }, positive},
      {"tanh", [](const Tensor& x) { return ops::tanh(x); }, normal},
      {"relu", [](const Tensor& x) { return ops::relu(x); }, off_zero},
      {"gelu_tanh", [](const Tensor& x) { return ops::gelu(x, ops::GeluApproximation::tanh); },
       normal},
      {"gelu_erf", [](const Tensor& x) { return ops::gelu(x, ops::GeluApproximation::erf); },
       normal},
  };
}

TEST(GradElementwise, UnaryOpsOnRandomShapes) {
  Generator generator(15);
  std::mt19937 rng(15);
  for (const UnaryOpCase& op : unary_ops()) {
    for (int trial = 0; trial < 3; ++trial) {
      const Shape shape = testing::random_shape(rng, 3, 4);
      SCOPED_TRACE(op.name + " " + shape_str(shape));
      const Tensor x = op.make_input(shape, generator);
      EXPECT_TRUE(gradcheck_passes([&](const auto& in) { return op.fn(in[0]); }, {x}));
    }
  }
}

TEST(GradElementwise, UnaryOpsOnNonContiguousViews) {
  Generator generator(16);
  for (const UnaryOpCase& op : unary_ops()) {
    SCOPED_TRACE(op.name);
    // A strided view of an input in the op's domain, made a leaf of its own.
    Tensor x = op.make_input({6, 3}, generator).detach().transpose(0, 1).slice(1, 1, 6, 2);
    x.set_requires_grad(true);
    ASSERT_FALSE(x.is_contiguous());
    EXPECT_TRUE(gradcheck_passes([&](const auto& in) { return op.fn(in[0]); }, {x}));
  }
}

TEST(GradElementwise, ReluPassesNoGradientBelowZero) {
  // gradcheck compares against finite differences; this pins the values too.
  const Tensor x = Tensor::from_vector<double>({4}, {-2.0, -0.5, 0.5, 2.0}).set_requires_grad(true);
  autograd::backward(ops::sum(ops::relu(x)));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0.0, 0.0, 1.0, 1.0}));
}

}  // namespace
}  // namespace topkformer
