// The device-neutral part of the linear_attention family (backend.h): the
// operand checks of causal_linear_attention and its backward, shared by every
// device.
#pragma once

#include <cstdint>

#include "topkformer/core/tensor.h"

namespace topkformer::kernels {

struct LinearAttentionShape {
  std::int64_t groups, length, features, width;  // G, L, m, dv
};

// Checks contiguous phi_q, phi_k [G, L, m] and v [G, L, dv] of one floating
// dtype; `op` names the kernel.
LinearAttentionShape check_linear_attention(const Tensor& phi_q, const Tensor& phi_k,
                                            const Tensor& v, const char* op);

// The above, and d_out contiguous and shaped as v.
LinearAttentionShape check_linear_attention_backward(const Tensor& phi_q, const Tensor& phi_k,
                                                     const Tensor& v, const Tensor& d_out);

}  // namespace topkformer::kernels
