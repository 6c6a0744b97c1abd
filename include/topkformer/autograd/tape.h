// Reverse-mode automatic differentiation on a tape.
// See Note [the tape].
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "topkformer/autograd/grad_mode.h"
#include "topkformer/core/tensor.h"

// Note [the tape]
// Differentiable ops append a Node to the current tape, in execution order,
// when grad mode is on and an input requires gradients. backward() replays the
// tape in reverse: each node turns the gradients of its outputs into
// gradients of its inputs, which are summed into leaf tensors' grad(). A
// node's saved tensors live in its backward function, which is destroyed as
// soon as it has run, so activations are freed during the backward pass.

namespace topkformer::autograd {

// Attached to every tensor that requires gradients.
struct AutogradMeta {
  bool is_leaf = false;
  // Leaves: the accumulated gradient. Non-leaves: the gradient being
  // accumulated during backward(), released once the producing node has run.
  Tensor grad;
};

// Turns the gradients of a node's outputs into gradients of its inputs (one
// entry per input; an undefined tensor means "no gradient").
using BackwardFunction = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

struct Node {
  std::string name;
  std::vector<std::shared_ptr<AutogradMeta>> inputs;  // null where the input needs no gradient
  std::vector<Shape> input_shapes;
  std::vector<std::shared_ptr<AutogradMeta>> outputs;
  std::vector<Shape> output_shapes;
  std::vector<DType> output_dtypes;
  Device device;
  BackwardFunction backward;
};

class Tape {
 public:
  void record(Node node) { nodes_.push_back(std::move(node)); }
  std::size_t size() const { return nodes_.size(); }
  const std::vector<Node>& nodes() const { return nodes_; }
  void clear() { nodes_.clear(); }
  // Runs the recorded nodes backward, from the last, and empties the tape.
  void run_backward();

 private:
  std::vector<Node> nodes_;
};

// The tape ops record on (per thread). TapeScope swaps in another for its scope
// (recompute() recomputes on a private tape).
Tape& current_tape();
class TapeScope {
 public:
  explicit TapeScope(Tape& tape);
  ~TapeScope();
  TapeScope(const TapeScope&) = delete;
  TapeScope& operator=(const TapeScope&) = delete;

 private:
  Tape* previous_;
};

// Differentiates a scalar loss: seeds d loss = 1 and runs the tape backward.
void backward(const Tensor& loss);
// Seeds several outputs with given gradients (same shapes) and runs the tape backward.
void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs);

// Adds `gradient` to meta.grad (taking it over on first use when nothing else
// refers to it, else copying it for a leaf).
void accumulate_grad(AutogradMeta& meta, Tensor gradient);

}  // namespace topkformer::autograd
