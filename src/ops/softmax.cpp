#include "topkformer/ops.h"

#include "op_support.h"

namespace topkformer::ops {

namespace {
Tensor softmax_op(const Tensor& x, const RowMask& mask, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  check_floating(x, name);
  TKF_CHECK(x.dim() >= 1, name, ": needs rank >= 1, got shape ", shape_str(x.shape()));
  const Tensor input = x.contiguous();
  Tensor out = empty_like(x);
  backend_of(x).softmax(input, mask, log, out);
  // The backward pass needs only the output (masked entries are 0 or -inf there).
  return autograd::record(name, {x}, out, [y = out.detach(), log](const auto& g) {
    Tensor dx = empty_like(y);
    backend_of(y).softmax_backward(y, g[0].contiguous(), log, dx);
    return std::vector<Tensor>{dx};
  });
}
}  // namespace

Tensor softmax(const Tensor& x, const RowMask& mask) {
  return softmax_op(x, mask, false);
}
Tensor log_softmax(const Tensor& x, const RowMask& mask) {
  return softmax_op(x, mask, true);
}

}  // namespace topkformer::ops
