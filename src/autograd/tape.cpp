#include "topkformer/autograd/tape.h"

#include "topkformer/kernels/backend.h"

namespace topkformer::autograd {

namespace {
thread_local Tape default_tape;
thread_local Tape* active_tape = nullptr;

// Node-local gradient buffers are never modified in place, so a gradient can be
// stored as it comes (possibly a view). Leaves need a private contiguous
// buffer because users and optimizers scale and clip leaf gradients in place:
// a gradient nothing else refers to is taken over, anything else is copied.
Tensor sum_of(const Tensor& a, const Tensor& b) {
  Tensor result = Tensor::empty(a.shape(), a.dtype(), a.device());
  kernels::backend(a.device()).binary(kernels::BinaryOp::add, a, b, result);
  return result;
}
}  // namespace

Tape& current_tape() {
  return active_tape ? *active_tape : default_tape;
}

TapeScope::TapeScope(Tape& tape) : previous_(active_tape) {
  active_tape = &tape;
}
TapeScope::~TapeScope() {
  active_tape = previous_;
}

void accumulate_grad(AutogradMeta& meta, Tensor gradient) {
  if (!meta.grad.defined()) {
    const bool private_buffer = gradient.is_contiguous() && gradient.is_sole_owner();
    meta.grad = meta.is_leaf && !private_buffer ? gradient.clone() : std::move(gradient);
    return;
  }
  check_same_shape(meta.grad, gradient, "autograd: gradient accumulation");
  check_same_dtype(meta.grad, gradient, "autograd: gradient accumulation");
  meta.grad = sum_of(meta.grad, gradient);
}

void Tape::run_backward() {
  NoGradGuard no_grad;
  for (std::size_t i = nodes_.size(); i-- > 0;) {
    Node& node = nodes_[i];
    bool reached = false;
    for (const auto& output : node.outputs) reached = reached || output->grad.defined();
    if (!reached) {
      node.backward = nullptr;
      continue;
    }
    std::vector<Tensor> grad_outputs;
    for (std::size_t j = 0; j < node.outputs.size(); ++j) {
      AutogradMeta& output = *node.outputs[j];
      grad_outputs.push_back(
          output.grad.defined()
              ? output.grad
              : Tensor::zeros(node.output_shapes[j], node.output_dtypes[j], node.device));
      output.grad = Tensor();  // the node's outputs are not leaves: release their buffers
    }
    std::vector<Tensor> grad_inputs = node.backward(grad_outputs);
    node.backward = nullptr;  // frees what the node saved
    grad_outputs.clear();
    TKF_CHECK(grad_inputs.size() == node.inputs.size(), "autograd: backward of '", node.name,
              "' returned ", grad_inputs.size(), " gradients for ", node.inputs.size(), " inputs");
    for (std::size_t j = 0; j < node.inputs.size(); ++j) {
      if (!node.inputs[j] || !grad_inputs[j].defined()) continue;
      TKF_CHECK(grad_inputs[j].shape() == node.input_shapes[j], "autograd: backward of '",
                node.name, "' returned a gradient of shape ", shape_str(grad_inputs[j].shape()),
                " for input ", j, " of shape ", shape_str(node.input_shapes[j]));
      accumulate_grad(*node.inputs[j], std::move(grad_inputs[j]));
    }
  }
  nodes_.clear();
}

void backward(const Tensor& loss) {
  TKF_CHECK(loss.numel() == 1, "backward: the loss must have one element, got shape ",
            shape_str(loss.shape()));
  backward({loss}, {Tensor::ones(loss.shape(), loss.dtype(), loss.device())});
}

void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs) {
  TKF_CHECK(outputs.size() == grad_outputs.size(), "backward: ", outputs.size(), " outputs but ",
            grad_outputs.size(), " gradients");
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    TKF_CHECK(outputs[i].requires_grad(), "backward: output ", i,
              " does not require gradients (no input of its computation does)");
    check_same_shape(outputs[i], grad_outputs[i], "backward: output vs its gradient");
    check_same_dtype(outputs[i], grad_outputs[i], "backward: output vs its gradient");
    accumulate_grad(*outputs[i].autograd_meta(), grad_outputs[i]);
  }
  current_tape().run_backward();
}

}  // namespace topkformer::autograd
