// Differentiable losses.
#pragma once

#include <cstdint>

#include "topkformer/core/tensor.h"

namespace topkformer::ops {

// Mean cross-entropy of logits [..., C] against integer targets [...] over
// the targets that are not ignore_index (0 when all are ignored), with label
// smoothing: the target distribution is (1 - s) onehot + s / C.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, std::int64_t ignore_index = -100,
                     double label_smoothing = 0.0);

}  // namespace topkformer::ops
