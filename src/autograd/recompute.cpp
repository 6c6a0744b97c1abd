#include "topkformer/autograd/recompute.h"

#include "topkformer/autograd/function.h"

namespace topkformer::autograd {

namespace {
// Puts the default generator at `state` for its scope and then back where it was.
class GeneratorReplay {
 public:
  explicit GeneratorReplay(PhiloxState state) : saved_(default_generator().state()) {
    default_generator().set_state(state);
  }
  ~GeneratorReplay() { default_generator().set_state(saved_); }
  GeneratorReplay(const GeneratorReplay&) = delete;
  GeneratorReplay& operator=(const GeneratorReplay&) = delete;

 private:
  PhiloxState saved_;
};
}  // namespace

std::vector<Tensor> recompute(const RecomputeFunction& fn, const std::vector<Tensor>& inputs) {
  const PhiloxState generator_state = default_generator().state();
  std::vector<Tensor> outputs;
  {
    NoGradGuard no_grad;
    outputs = fn(inputs);
  }
  record(
      "recompute", inputs, outputs,
      [fn, inputs, generator_state](const std::vector<Tensor>& grad_outputs) {
        std::vector<Tensor> leaves;
        for (const Tensor& input : inputs) {
          Tensor leaf = input.detach();
          if (input.requires_grad()) leaf.set_requires_grad(true);
          leaves.push_back(leaf);
        }
        Tape tape;
        TapeScope scope(tape);
        std::vector<Tensor> recomputed;
        {
          EnableGradGuard enable_grad;
          GeneratorReplay replay(generator_state);
          recomputed = fn(leaves);
        }
        std::vector<Tensor> differentiable, seeds;
        for (std::size_t i = 0; i < recomputed.size(); ++i) {
          if (!recomputed[i].requires_grad()) continue;
          differentiable.push_back(recomputed[i]);
          seeds.push_back(grad_outputs[i]);
        }
        if (!differentiable.empty()) backward(differentiable, seeds);
        std::vector<Tensor> grad_inputs;
        for (const Tensor& leaf : leaves) grad_inputs.push_back(leaf.grad());
        return grad_inputs;
      },
      RecordWhen::grad_mode_on);
  return outputs;
}

}  // namespace topkformer::autograd
