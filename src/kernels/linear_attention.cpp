#include "kernels/linear_attention.h"

namespace topkformer::kernels {

LinearAttentionShape check_linear_attention(const Tensor& phi_q, const Tensor& phi_k,
                                            const Tensor& v, const char* op) {
  TKF_CHECK(phi_q.dim() == 3 && phi_k.shape() == phi_q.shape() && v.dim() == 3 &&
                v.size(0) == phi_q.size(0) && v.size(1) == phi_q.size(1),
            op, ": expected phi_q, phi_k [G, L, m] and v [G, L, dv], got ",
            shape_str(phi_q.shape()), ", ", shape_str(phi_k.shape()), ", ", shape_str(v.shape()));
  TKF_CHECK(phi_q.is_contiguous() && phi_k.is_contiguous() && v.is_contiguous(), op,
            ": operands must be contiguous");
  check_same_dtype(phi_q, phi_k, op);
  check_same_dtype(phi_q, v, op);
  return {phi_q.size(0), phi_q.size(1), phi_q.size(2), v.size(2)};
}

LinearAttentionShape check_linear_attention_backward(const Tensor& phi_q, const Tensor& phi_k,
                                                     const Tensor& v, const Tensor& d_out) {
  const LinearAttentionShape shape =
      check_linear_attention(phi_q, phi_k, v, "causal_linear_attention_backward");
  TKF_CHECK(d_out.is_contiguous() && d_out.shape() == v.shape(),
            "causal_linear_attention_backward: d_out ", shape_str(d_out.shape()),
            " must be contiguous and match v ", shape_str(v.shape()));
  return shape;
}

}  // namespace topkformer::kernels
