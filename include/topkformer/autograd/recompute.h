// Activation recomputation (gradient checkpointing): run a function without keeping its activations
// and recompute them during the backward pass.
#pragma once

#include <functional>
#include <vector>

#include "topkformer/core/tensor.h"

namespace topkformer::autograd {

using RecomputeFunction = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

// Runs fn(inputs) with grad mode off, saving only `inputs` (and the state of
// the default generator, so that dropout inside fn replays the same mask).
// In the backward pass fn runs again on a private tape and is differentiated;
// parameters that fn uses receive their gradients as usual.
std::vector<Tensor> recompute(const RecomputeFunction& fn, const std::vector<Tensor>& inputs);

}  // namespace topkformer::autograd
