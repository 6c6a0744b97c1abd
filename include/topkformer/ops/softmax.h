// Differentiable softmax and log-softmax over the last dimension, with
// optional causal and key-padding masks (see kernels::RowMask).
#pragma once

#include "topkformer/kernels/backend.h"

namespace topkformer::ops {

using kernels::RowMask;

Tensor softmax(const Tensor& x, const RowMask& mask = {});
Tensor log_softmax(const Tensor& x, const RowMask& mask = {});

}  // namespace topkformer::ops
