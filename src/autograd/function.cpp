#include "topkformer/autograd/function.h"

namespace topkformer::autograd {

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!GradMode::enabled()) return false;
  for (const Tensor& input : inputs) {
    if (input.defined() && input.requires_grad()) return true;
  }
  return false;
}

void record(const std::string& name, const std::vector<Tensor>& inputs,
            std::vector<Tensor>& outputs, BackwardFunction backward, RecordWhen when) {
  const bool wanted = when == RecordWhen::grad_mode_on ? GradMode::enabled() : needs_grad(inputs);
  if (!wanted) return;
  Node node;
  node.name = name;
  for (const Tensor& input : inputs) {
    const bool tracked = input.defined() && input.requires_grad();
    node.inputs.push_back(tracked ? input.autograd_meta() : nullptr);
    node.input_shapes.push_back(input.defined() ? input.shape() : Shape{});
  }
  for (Tensor& output : outputs) {
    // An op may hand back one of its inputs unchanged (contiguous() of a
    // contiguous tensor); give the output its own identity before marking it.
    if (output.autograd_meta()) output = output.detach();
    auto meta = std::make_shared<AutogradMeta>();
    output.set_autograd_meta(meta);
    node.outputs.push_back(meta);
    node.output_shapes.push_back(output.shape());
    node.output_dtypes.push_back(output.dtype());
    node.device = output.device();
  }
  node.backward = std::move(backward);
  current_tape().record(std::move(node));
}

Tensor record(const std::string& name, const std::vector<Tensor>& inputs, Tensor output,
              BackwardFunction backward) {
  std::vector<Tensor> outputs{std::move(output)};
  record(name, inputs, outputs, std::move(backward));
  return outputs[0];
}

std::vector<Tensor> apply(std::shared_ptr<Function> function, const std::vector<Tensor>& inputs) {
  std::vector<Tensor> outputs;
  {
    NoGradGuard no_grad;
    outputs = function->forward(inputs);
  }
  const std::string name = function->name();
  record(name, inputs, outputs,
         [function = std::move(function)](const std::vector<Tensor>& grad_outputs) {
           return function->backward(grad_outputs);
         });
  return outputs;
}

}  // namespace topkformer::autograd
