#include "topkformer/nn/module.h"

namespace topkformer::nn {

Tensor Module::register_parameter(const std::string& name, Tensor value) {
  value.set_requires_grad(true);
  parameters_.emplace_back(name, value);
  return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  for (auto& [existing, tensor] : buffers_) {
    if (existing == name) {  // a buffer whose size changed (e.g. Performer features)
      tensor = value;
      return value;
    }
  }
  buffers_.emplace_back(name, value);
  return value;
}

void Module::collect(const std::string& prefix, bool buffers, NamedTensors& out) const {
  for (const auto& [name, tensor] : buffers ? buffers_ : parameters_) {
    out.emplace_back(prefix + name, tensor);
  }
  for (const auto& [name, child] : children_) {
    // A child registered without a name contributes its entries at this level.
    child->collect(name.empty() ? prefix : prefix + name + ".", buffers, out);
  }
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", false, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, tensor] : named_parameters()) out.push_back(tensor);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", true, out);
  return out;
}

void Module::to(Device device) {
  for (auto& [name, parameter] : named_parameters()) parameter.move_to_(device);
  for (auto& [name, buffer] : named_buffers()) {
    if (is_floating(buffer.dtype())) buffer.move_to_(device);
  }
}

void Module::train(bool training) {
  training_ = training;
  for (auto& [name, child] : children_) child->train(training);
}

}  // namespace topkformer::nn
