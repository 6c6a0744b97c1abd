#include "topkformer/ops.h"

#include "op_support.h"

namespace topkformer::ops {

Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps) {
  check_floating(x, "layer_norm");
  check_compatible(x, gamma, "layer_norm");
  check_compatible(x, beta, "layer_norm");
  TKF_CHECK(x.dim() >= 1 && gamma.shape() == Shape{x.size(-1)} && beta.shape() == gamma.shape(),
            "layer_norm: input ", shape_str(x.shape()), " needs gamma and beta of shape [",
            x.dim() >= 1 ? x.size(-1) : 0, "], got ", shape_str(gamma.shape()), " and ",
            shape_str(beta.shape()));
  const Tensor input = x.contiguous();
  const std::int64_t rows = x.numel() / x.size(-1);
  Tensor y = empty_like(x);
  Tensor mean = empty_like(x, {rows});
  Tensor rstd = empty_like(x, {rows});
  backend_of(x).layer_norm(input, gamma.contiguous(), beta.contiguous(), eps, y, mean, rstd);
  return autograd::record(
      "layer_norm", {x, gamma, beta}, y, [input, gamma, mean, rstd](const auto& g) {
        Tensor dx = empty_like(input);
        Tensor dgamma = empty_like(gamma);
        Tensor dbeta = empty_like(gamma);
        backend_of(input).layer_norm_backward(input, gamma.contiguous(), mean, rstd,
                                              g[0].contiguous(), dx, dgamma, dbeta);
        return std::vector<Tensor>{dx, dgamma, dbeta};
      });
}

}  // namespace topkformer::ops
