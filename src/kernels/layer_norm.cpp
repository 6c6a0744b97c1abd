#include "kernels/layer_norm.h"

namespace topkformer::kernels {

std::int64_t check_layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                              const Tensor& y) {
  TKF_CHECK(x.is_contiguous() && y.is_contiguous() && gamma.is_contiguous() && beta.is_contiguous(),
            "layer_norm: operands must be contiguous");
  const std::int64_t d = x.size(-1);
  TKF_CHECK(gamma.numel() == d && beta.numel() == d, "layer_norm: gamma ", shape_str(gamma.shape()),
            " and beta ", shape_str(beta.shape()), " must have the input's last extent ", d,
            " (input ", shape_str(x.shape()), ")");
  return d;
}

std::int64_t check_layer_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& dx) {
  TKF_CHECK(x.is_contiguous() && dy.is_contiguous() && dx.is_contiguous(),
            "layer_norm_backward: operands must be contiguous");
  return x.size(-1);
}

}  // namespace topkformer::kernels
