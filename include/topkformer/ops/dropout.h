// Differentiable dropout whose mask is regenerated, not stored.
#pragma once

#include "topkformer/core/rng.h"
#include "topkformer/core/tensor.h"
#include "topkformer/kernels/backend.h"

namespace topkformer::ops {

// Zeroes each element with probability p and scales the rest by 1 / (1 - p).
// The mask comes from the Philox stream at `state` (element e uses word
// state.offset + e); the backward pass regenerates it, so no mask is saved.
Tensor dropout(const Tensor& x, double p, PhiloxState state,
               const kernels::DropoutAddressing& addressing = {});
// Draws the state from `generator` (numel words). Identity when p == 0.
Tensor dropout(const Tensor& x, double p, Generator& generator = default_generator());

}  // namespace topkformer::ops
