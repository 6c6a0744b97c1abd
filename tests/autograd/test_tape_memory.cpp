// Saved tensors are freed as soon as their node has run backward, not at the
// end of the pass: measured with the CPU allocator's exact byte counters on a
// chain whose activations are large compared with everything else.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "topkformer/autograd/function.h"
#include "topkformer/core/allocator.h"
#include "topkformer/ops.h"

namespace topkformer {
namespace {

constexpr std::int64_t elements = 32768;  // 256 KiB per f64 activation
constexpr std::int64_t activation_bytes = elements * 8;
constexpr int depth = 6;
// Scalars (the loss, its seed) and other bookkeeping stay far below this.
constexpr std::int64_t slack = 4096;

std::int64_t cpu_bytes() {
  return allocator_for(Device::cpu()).current_bytes();
}

// Identity whose backward notes how many bytes are live when it runs. Put
// first in the chain, its backward runs after every later node's.
class MemoryProbe final : public autograd::Function {
 public:
  explicit MemoryProbe(std::int64_t* bytes_at_backward) : bytes_at_backward_(bytes_at_backward) {}
  std::string name() const override { return "memory_probe"; }
  std::vector<Tensor> forward(const std::vector<Tensor>& inputs) override { return {inputs[0]}; }
  std::vector<Tensor> backward(const std::vector<Tensor>& grad_outputs) override {
    *bytes_at_backward_ = cpu_bytes();
    return {grad_outputs[0]};
  }

 private:
  std::int64_t* bytes_at_backward_;
};

class AutogradTapeMemory : public ::testing::Test {
 protected:
  void SetUp() override { autograd::current_tape().clear(); }
  void TearDown() override { autograd::current_tape().clear(); }
};

TEST_F(AutogradTapeMemory, ActivationsAreFreedNodeByNode) {
  Generator generator(81);
  const Tensor x = Tensor::randn({elements}, generator, DType::f64).set_requires_grad(true);
  const std::int64_t start = cpu_bytes();
  std::int64_t bytes_at_probe = -1;

  Tensor loss;
  {
    // tanh saves its output: `depth` activations that only the tape holds
    // once this scope drops the handles.
    Tensor h = autograd::apply(std::make_shared<MemoryProbe>(&bytes_at_probe), {x})[0];
    for (int i = 0; i < depth; ++i) h = ops::tanh(h);
    loss = ops::sum(h);
  }
  const std::int64_t after_forward = cpu_bytes();
  EXPECT_GE(after_forward - start, depth * activation_bytes);
  EXPECT_LE(after_forward - start, depth * activation_bytes + slack);

  allocator_for(Device::cpu()).reset_peak();
  autograd::backward(loss);
  const std::int64_t peak = allocator_for(Device::cpu()).peak_bytes();

  // When the probe (the first node) runs, every tanh has run and released its
  // output: only the gradient flowing into the probe is left.
  ASSERT_GE(bytes_at_probe, 0) << "the probe's backward did not run";
  EXPECT_LE(bytes_at_probe - start, activation_bytes + slack)
      << "saved tensors of nodes that already ran are still alive";
  // The backward pass needs at most two gradient buffers beyond the forward state.
  EXPECT_LE(peak - after_forward, 2 * activation_bytes + slack);
  // Afterwards only x's gradient remains.
  ASSERT_TRUE(x.grad().defined());
  EXPECT_GE(cpu_bytes() - start, activation_bytes);
  EXPECT_LE(cpu_bytes() - start, activation_bytes + slack);
}

TEST_F(AutogradTapeMemory, BranchesThatMissTheLossAreReleasedToo) {
  Generator generator(82);
  const Tensor x = Tensor::randn({elements}, generator, DType::f64).set_requires_grad(true);
  const std::int64_t start = cpu_bytes();
  Tensor loss;
  {
    Tensor dead_end = x;
    for (int i = 0; i < depth; ++i) dead_end = ops::exp(dead_end);  // saved, never differentiated
    loss = ops::sum(x);
  }
  EXPECT_GE(cpu_bytes() - start, depth * activation_bytes);
  autograd::backward(loss);
  EXPECT_EQ(autograd::current_tape().size(), 0u);
  EXPECT_LE(cpu_bytes() - start, activation_bytes + slack);  // x's gradient only
}

TEST_F(AutogradTapeMemory, GradientsOfIntermediatesAreReleased) {
  // Non-leaf gradients exist only while their producer's node is pending:
  // a long chain of views and cheap ops must not accumulate them.
  Generator generator(83);
  const Tensor x = Tensor::randn({elements}, generator, DType::f64).set_requires_grad(true);
  const std::int64_t start = cpu_bytes();
  Tensor loss;
  {
    Tensor h = x;
    for (int i = 0; i < 2 * depth; ++i) h = ops::add_scalar(ops::scale(h, 1.5), 0.25);
    loss = ops::sum(h);
  }
  // scale and add_scalar save nothing, and the handles are gone: the
  // forward holds no activation at all.
  EXPECT_LE(cpu_bytes() - start, slack);
  allocator_for(Device::cpu()).reset_peak();
  autograd::backward(loss);
  EXPECT_LE(allocator_for(Device::cpu()).peak_bytes() - start, 2 * activation_bytes + slack);
  EXPECT_LE(cpu_bytes() - start, activation_bytes + slack);
}

}  // namespace
}  // namespace topkformer
