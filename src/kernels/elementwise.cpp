#include "kernels/elementwise.h"

namespace topkformer::kernels {

void check_elementwise_input(const Tensor& input, const Tensor& out) {
  check_same_shape(input, out, "elementwise");
  TKF_CHECK(input.dtype() == out.dtype(), "elementwise: dtype mismatch, ",
            dtype_name(input.dtype()), " vs ", dtype_name(out.dtype()));
}

void check_unary_backward_op(UnaryOp op) {
  TKF_CHECK(op == UnaryOp::relu || op == UnaryOp::gelu_tanh || op == UnaryOp::gelu_erf ||
                op == UnaryOp::tanh,
            "unary_backward: no derivative kernel for this op; differentiate it with ops");
}

}  // namespace topkformer::kernels
