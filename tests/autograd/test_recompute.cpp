// recompute(fn, inputs): the same gradients as running fn directly (inputs
// and parameters captured by fn), fewer bytes kept alive by the forward pass,
// and dropout inside fn replaying the mask of the forward pass.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ops/grad_helpers.h"
#include "test_util.h"
#include "topkformer/autograd/recompute.h"
#include "topkformer/autograd/tape.h"
#include "topkformer/core/allocator.h"
#include "topkformer/ops.h"

namespace topkformer {
namespace {

using autograd::recompute;
using autograd::RecomputeFunction;
using testing::max_abs_diff;

class AutogradRecompute : public ::testing::Test {
 protected:
  void SetUp() override {
    autograd::current_tape().clear();
    saved_generator_ = default_generator().state();
  }
  void TearDown() override {
    autograd::current_tape().clear();
    default_generator().set_state(saved_generator_);
  }

 private:
  PhiloxState saved_generator_;
};

// A small block with parameters captured by reference, as a layer's forward
// would: two outputs, so that the seeding of several outputs is covered.
struct Block {
  Tensor w, b;
  std::vector<Tensor> operator()(const std::vector<Tensor>& in) const {
    const Tensor h = ops::tanh(ops::add(ops::mul(in[0], w), b));
    return {ops::mul(h, in[1]), ops::exp(h)};
  }
};

// sum(out0 * c0) + sum(out1 * c1): every output element has its own weight.
Tensor weighted_loss(const std::vector<Tensor>& outputs, const Tensor& c0, const Tensor& c1) {
  return ops::add(ops::sum(ops::mul(outputs[0], c0)), ops::sum(ops::mul(outputs[1], c1)));
}

std::vector<Tensor> grads_of(const std::vector<Tensor>& tensors) {
  std::vector<Tensor> grads;
  for (Tensor t : tensors) {  // a handle copy: zero_grad() acts on the shared tensor
    grads.push_back(t.grad());
    t.zero_grad();
  }
  return grads;
}

TEST_F(AutogradRecompute, GradientsMatchTheDirectRunIncludingCapturedParameters) {
  Generator generator(91);
  const Tensor x = testing::leaf({4, 5}, generator);
  const Tensor y = testing::leaf({4, 5}, generator);
  const Block block{testing::leaf({5}, generator), testing::leaf({5}, generator)};
  const Tensor c0 = Tensor::randn({4, 5}, generator, DType::f64);
  const Tensor c1 = Tensor::randn({4, 5}, generator, DType::f64);
  const std::vector<Tensor> leaves = {x, y, block.w, block.b};

  autograd::backward(weighted_loss(block({x, y}), c0, c1));
  const std::vector<Tensor> direct = grads_of(leaves);
  autograd::backward(weighted_loss(recompute(block, {x, y}), c0, c1));
  const std::vector<Tensor> recomputed = grads_of(leaves);

  for (std::size_t i = 0; i < leaves.size(); ++i) {
    SCOPED_TRACE("leaf " + std::to_string(i));
    ASSERT_TRUE(direct[i].defined());
    ASSERT_TRUE(recomputed[i].defined());
    EXPECT_LE(max_abs_diff(direct[i], recomputed[i]), 1e-12);
  }
}

TEST_F(AutogradRecompute, OnlyOneOutputUsed) {
  // The unused output gets a zero seed in the recomputation.
  Generator generator(92);
  const Tensor x = testing::leaf({3, 5}, generator);
  const Tensor y = testing::leaf({3, 5}, generator);
  const Block block{testing::leaf({5}, generator), testing::leaf({5}, generator)};
  autograd::backward(ops::sum(block({x, y})[1]));
  const std::vector<Tensor> direct = grads_of({x, y, block.w});
  autograd::backward(ops::sum(recompute(block, {x, y})[1]));
  const std::vector<Tensor> recomputed = grads_of({x, y, block.w});
  EXPECT_LE(max_abs_diff(direct[0], recomputed[0]), 1e-12);
  EXPECT_LE(max_abs_diff(direct[2], recomputed[2]), 1e-12);
  // y only feeds output 0, which is not in the loss: no gradient, or zeros.
  EXPECT_FALSE(direct[1].defined());
  if (recomputed[1].defined()) {
    EXPECT_EQ(max_abs_diff(recomputed[1], Tensor::zeros({3, 5}, DType::f64)), 0.0);
  }
}

TEST_F(AutogradRecompute, PassesGradcheckAsAnOp) {
  Generator generator(93);
  const RecomputeFunction fn = [](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{ops::matmul(ops::gelu(in[0]), in[1])};
  };
  EXPECT_TRUE(testing::gradcheck_passes(
      [&](const auto& in) {
        return recompute(fn, {in[0], in[1]})[0];
      },
      {testing::leaf({2, 3, 4}, generator), testing::transposed_leaf({4, 2}, generator)}));
}

TEST_F(AutogradRecompute, ParametersGetGradientsWhenNoInputRequiresGrad) {
  // The first block of a model sees data that needs no gradient; the
  // parameters inside fn must still be trained.
  Generator generator(94);
  const Tensor data = Tensor::randn({3, 5}, generator, DType::f64);
  const Block block{testing::leaf({5}, generator), testing::leaf({5}, generator)};
  autograd::backward(ops::sum(block({data, data})[0]));
  const std::vector<Tensor> direct = grads_of({block.w, block.b});
  ASSERT_TRUE(direct[0].defined());

  const std::vector<Tensor> outputs = recompute(block, {data, data});
  ASSERT_TRUE(outputs[0].requires_grad())
      << "the recomputed output does not require grad although fn uses parameters that do";
  autograd::backward(ops::sum(outputs[0]));
  const std::vector<Tensor> recomputed = grads_of({block.w, block.b});
  ASSERT_TRUE(recomputed[0].defined());
  EXPECT_LE(max_abs_diff(direct[0], recomputed[0]), 1e-12);
  EXPECT_LE(max_abs_diff(direct[1], recomputed[1]), 1e-12);
}

// A deep chain whose activations dominate memory.
constexpr std::int64_t elements = 32768;  // 256 KiB per f64 activation
constexpr std::int64_t activation_bytes = elements * 8;
constexpr int depth = 6;
constexpr std::int64_t slack = 4096;

std::vector<Tensor> deep_chain(const std::vector<Tensor>& in) {
  Tensor h = in[0];
  for (int i = 0; i < depth; ++i) h = ops::tanh(h);
  return {h};
}

std::int64_t cpu_bytes() {
  return allocator_for(Device::cpu()).current_bytes();
}

TEST_F(AutogradRecompute, ForwardKeepsOnlyTheInputsAlive) {
  Generator generator(95);
  Tensor x = Tensor::randn({elements}, generator, DType::f64).set_requires_grad(true);
  const std::int64_t start = cpu_bytes();

  Tensor direct_loss = ops::sum(deep_chain({x})[0]);
  const std::int64_t direct_bytes = cpu_bytes() - start;
  autograd::backward(direct_loss);
  const Tensor direct_grad = x.grad();
  x.zero_grad();
  direct_loss = Tensor();

  const std::int64_t before = cpu_bytes();
  Tensor recomputed_loss = ops::sum(recompute(deep_chain, {x})[0]);
  const std::int64_t recomputed_bytes = cpu_bytes() - before;

  // Direct: every tanh output is saved. Recomputed: nothing but scalars
  // (the output was dropped with its handle; the node saves only x).
  EXPECT_GE(direct_bytes, depth * activation_bytes);
  EXPECT_LE(recomputed_bytes, slack);

  autograd::backward(recomputed_loss);
  EXPECT_LE(max_abs_diff(direct_grad, x.grad()), 1e-12);
}

TEST_F(AutogradRecompute, DropoutInsideReplaysTheSameMask) {
  Generator generator(96);
  Tensor x = testing::leaf({4, 6}, generator);
  const Tensor c = Tensor::randn({4, 6}, generator, DType::f64);
  const RecomputeFunction fn = [](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{ops::dropout(ops::tanh(in[0]), 0.5)};  // default generator
  };
  const PhiloxState start{2024, 0};

  default_generator().set_state(start);
  const Tensor direct_out = fn({x})[0];
  autograd::backward(ops::sum(ops::mul(direct_out, c)));
  const Tensor direct_grad = x.grad();
  x.zero_grad();

  default_generator().set_state(start);
  const Tensor recomputed_out = recompute(fn, {x})[0];
  const Tensor loss = ops::sum(ops::mul(recomputed_out, c));
  // Other random draws between forward and backward must not change the mask.
  Tensor::randn({16}, default_generator());
  const PhiloxState before_backward = default_generator().state();
  autograd::backward(loss);

  EXPECT_EQ(max_abs_diff(direct_out, recomputed_out), 0.0);
  EXPECT_LE(max_abs_diff(direct_grad, x.grad()), 1e-12);
  // The replay puts the generator back where it was.
  EXPECT_EQ(default_generator().state().seed, before_backward.seed);
  EXPECT_EQ(default_generator().state().offset, before_backward.offset);
  // The comparison means something only if the mask dropped some elements.
  std::int64_t zeros = 0;
  for (double g : direct_grad.to_vector<double>()) zeros += g == 0.0;
  EXPECT_GT(zeros, 0);
  EXPECT_LT(zeros, x.numel());
}

}  // namespace
}  // namespace topkformer
