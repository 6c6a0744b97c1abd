// The custom Function API: autograd::apply runs forward() without recording,
// records one node whose backward is the hand-written one, and destroys the
// function object (and what it saved) once that backward has run.
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

using autograd::current_tape;

// x^3 with d/dx = 3x^2; sets *destroyed when the object (with the input it
// saved) goes away.
class Cube final : public autograd::Function {
 public:
  explicit Cube(bool* destroyed = nullptr) : destroyed_(destroyed) {}
  ~Cube() override {
    if (destroyed_) *destroyed_ = true;
  }
  std::string name() const override { return "cube"; }
  std::vector<Tensor> forward(const std::vector<Tensor>& inputs) override {
    recorded_during_forward_ = current_tape().size();
    x_ = inputs[0];
    const Tensor out = ops::mul(ops::mul(x_, x_), x_);
    recorded_during_forward_ = current_tape().size() - recorded_during_forward_;
    return {out};
  }
  std::vector<Tensor> backward(const std::vector<Tensor>& grad_outputs) override {
    return {ops::scale(ops::mul(ops::mul(x_, x_), grad_outputs[0]), 3.0)};
  }
  std::size_t recorded_during_forward_ = 0;

 private:
  bool* destroyed_;
  Tensor x_;
};

// Two outputs (x^2 and 2x); its backward checks what the tape hands it for
// an output that did not reach the loss.
class SquareAndDouble final : public autograd::Function {
 public:
  std::string name() const override { return "square_and_double"; }
  std::vector<Tensor> forward(const std::vector<Tensor>& inputs) override {
    x_ = inputs[0];
    return {ops::mul(x_, x_), ops::scale(x_, 2.0)};
  }
  std::vector<Tensor> backward(const std::vector<Tensor>& grad_outputs) override {
    *second_grad_ = grad_outputs[1];
    return {
        ops::add(ops::mul(ops::scale(x_, 2.0), grad_outputs[0]), ops::scale(grad_outputs[1], 2.0))};
  }
  std::shared_ptr<Tensor> second_grad_ = std::make_shared<Tensor>();

 private:
  Tensor x_;
};

class AutogradCustomFunction : public ::testing::Test {
 protected:
  void SetUp() override { current_tape().clear(); }
  void TearDown() override { current_tape().clear(); }
};

TEST_F(AutogradCustomFunction, HandWrittenBackwardGivesTheGradient) {
  const Tensor x = Tensor::from_vector<double>({3}, {1.0, -2.0, 0.5}).set_requires_grad(true);
  auto cube = std::make_shared<Cube>();
  const std::vector<Tensor> outputs = autograd::apply(cube, {x});
  EXPECT_EQ(cube->recorded_during_forward_, 0u);  // forward runs with grad mode off
  EXPECT_EQ(current_tape().size(), 1u);           // one node for the whole function
  EXPECT_EQ(current_tape().nodes().back().name, "cube");
  EXPECT_TRUE(outputs[0].requires_grad());
  EXPECT_FALSE(outputs[0].is_leaf());
  autograd::backward(ops::sum(outputs[0]));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{3.0, 12.0, 0.75}));
}

TEST_F(AutogradCustomFunction, PassesGradcheck) {
  Generator generator(101);
  EXPECT_TRUE(testing::gradcheck_passes(
      [](const auto& in) { return autograd::apply(std::make_shared<Cube>(), {in[0]})[0]; },
      {testing::transposed_leaf({3, 4}, generator)}));
}

TEST_F(AutogradCustomFunction, SavedStateIsDestroyedAfterItsBackward) {
  bool destroyed = false;
  const Tensor x = Tensor::from_vector<double>({2}, {1.0, 2.0}).set_requires_grad(true);
  Tensor loss = ops::sum(autograd::apply(std::make_shared<Cube>(&destroyed), {x})[0]);
  // Only the tape holds the function now, and it must keep it for backward.
  EXPECT_FALSE(destroyed);
  autograd::backward(loss);
  EXPECT_TRUE(destroyed);
}

TEST_F(AutogradCustomFunction, NotRecordedWhenNoInputRequiresGrad) {
  bool destroyed = false;
  const Tensor x = Tensor::from_vector<double>({2}, {1.0, 2.0});
  const Tensor y = autograd::apply(std::make_shared<Cube>(&destroyed), {x})[0];
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(current_tape().size(), 0u);
  EXPECT_TRUE(destroyed);  // nothing needed it after forward
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{1.0, 8.0}));
}

TEST_F(AutogradCustomFunction, UnreachedOutputGetsAZeroGradient) {
  const Tensor x = Tensor::from_vector<double>({2}, {1.5, -1.0}).set_requires_grad(true);
  auto function = std::make_shared<SquareAndDouble>();
  const std::shared_ptr<Tensor> second_grad = function->second_grad_;
  const std::vector<Tensor> outputs = autograd::apply(std::move(function), {x});
  autograd::backward(ops::sum(outputs[0]));  // output 1 is not part of the loss
  ASSERT_TRUE(second_grad->defined());
  EXPECT_EQ(second_grad->shape(), (Shape{2}));
  EXPECT_EQ(second_grad->to_vector<double>(), (std::vector<double>{0.0, 0.0}));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{3.0, -2.0}));
}

TEST_F(AutogradCustomFunction, WrongNumberOfGradientsIsReported) {
  class TooMany final : public autograd::Function {
   public:
    std::string name() const override { return "too_many"; }
    std::vector<Tensor> forward(const std::vector<Tensor>& in) override {
      return {ops::neg(in[0])};
    }
    std::vector<Tensor> backward(const std::vector<Tensor>& g) override { return {g[0], g[0]}; }
  };
  const Tensor x = Tensor::from_vector<double>({2}, {1.0, 2.0}).set_requires_grad(true);
  const Tensor loss = ops::sum(autograd::apply(std::make_shared<TooMany>(), {x})[0]);
  testing::expect_error_containing([&] { autograd::backward(loss); },
                                   {"too_many", "2 gradients", "1 inputs"});
}

}  // namespace
}  // namespace topkformer
