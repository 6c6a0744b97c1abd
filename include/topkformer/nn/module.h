// Modules: named parameters and buffers in a tree, addressed by dotted paths
// (`encoder.layers.0.self_attn.q_proj.weight`) as checkpoints store them.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "topkformer/core/tensor.h"

namespace topkformer::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Trainable leaves, depth first in registration order.
  NamedTensors named_parameters() const;
  std::vector<Tensor> parameters() const;
  // State that is saved with the model but not trained (e.g. Performer features).
  NamedTensors named_buffers() const;

  // Moves the parameters and floating-point buffers of this module and its
  // children to `device`, in place (Tensor::move_to_), so that every handle
  // (the optimizer's, the members') follows. Integer buffers are host-side
  // bookkeeping (counters) and stay on the CPU.
  void to(Device device);

  // Training mode (dropout on, feature redraws) for this module and its children.
  void train(bool training = true);
  bool is_training() const { return training_; }

 protected:
  // Registered tensors are handles shared with the module's members: update
  // them in place (copy_), never by assigning a new tensor to the member.
  // Registering a buffer name again replaces that buffer. A child registered
  // with an empty name puts its entries at this module's level.
  Tensor register_parameter(const std::string& name, Tensor value);
  Tensor register_buffer(const std::string& name, Tensor value);
  template <typename Child>
  std::shared_ptr<Child> register_module(const std::string& name, std::shared_ptr<Child> child) {
    children_.emplace_back(name, child);
    return child;
  }

 private:
  void collect(const std::string& prefix, bool buffers, NamedTensors& out) const;

  NamedTensors parameters_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace topkformer::nn
