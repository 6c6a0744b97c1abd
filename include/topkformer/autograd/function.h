// How ops join the tape.
// See Note [custom functions].
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "topkformer/autograd/tape.h"

// Note [custom functions]
// Built-in ops compute their outputs with kernels and then call record() with
// a backward lambda that captures what it needs (the saved tensors). Custom
// functions (the attention variants) subclass Function: forward() computes
// the outputs and keeps what backward() needs as members; apply() runs it and
// records it.

namespace topkformer::autograd {

// True when grad mode is on and some input requires gradients.
bool needs_grad(const std::vector<Tensor>& inputs);

// When a node is recorded: when an input requires gradients (ops), or
// whenever grad mode is on (recompute(), whose function may use parameters
// that are not among its inputs).
enum class RecordWhen { inputs_need_grad, grad_mode_on };

// Marks `outputs` as results of a differentiable op on `inputs` and records a
// node (see RecordWhen). The backward function runs with grad mode off.
void record(const std::string& name, const std::vector<Tensor>& inputs,
            std::vector<Tensor>& outputs, BackwardFunction backward,
            RecordWhen when = RecordWhen::inputs_need_grad);
// Single-output convenience: returns `output`, marked.
Tensor record(const std::string& name, const std::vector<Tensor>& inputs, Tensor output,
              BackwardFunction backward);

class Function {
 public:
  virtual ~Function() = default;
  virtual std::string name() const = 0;
  // Runs with grad mode off; store what backward() needs as members.
  virtual std::vector<Tensor> forward(const std::vector<Tensor>& inputs) = 0;
  // One gradient per input (undefined where not needed). Runs with grad mode off.
  virtual std::vector<Tensor> backward(const std::vector<Tensor>& grad_outputs) = 0;
};

// Runs `function` forward and, when gradients are needed, records it; the
// function object (and everything it saved) is freed once its backward has run.
std::vector<Tensor> apply(std::shared_ptr<Function> function, const std::vector<Tensor>& inputs);

}  // namespace topkformer::autograd
