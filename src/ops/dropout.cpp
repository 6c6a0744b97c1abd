#include "topkformer/ops.h"

#include "op_support.h"

namespace topkformer::ops {

namespace {
Tensor dropout_kernel(const Tensor& x, double p, PhiloxState state,
                      const kernels::DropoutAddressing& addressing) {
  Tensor out = empty_like(x);
  backend_of(x).dropout(x.contiguous(), p, state, addressing, out);
  return out;
}
}  // namespace

Tensor dropout(const Tensor& x, double p, PhiloxState state,
               const kernels::DropoutAddressing& addressing) {
  check_floating(x, "dropout");
  TKF_CHECK(p >= 0.0 && p < 1.0, "dropout: probability must be in [0, 1), got ", p);
  Tensor out = dropout_kernel(x, p, state, addressing);
  // The same mask scales the gradient: regenerate it from the state.
  return autograd::record("dropout", {x}, out, [p, state, addressing](const auto& g) {
    return std::vector<Tensor>{dropout_kernel(g[0], p, state, addressing)};
  });
}

Tensor dropout(const Tensor& x, double p, Generator& generator) {
  if (p == 0.0) return x;
  return dropout(x, p, generator.reserve(words_per_bernoulli * std::uint64_t(x.numel())));
}

}  // namespace topkformer::ops
