#include "topkformer/nn/linear.h"

#include "topkformer/ops.h"

namespace topkformer::nn {

Linear::Linear(std::int64_t in_features, std::int64_t out_features, bool bias, Generator& init,
               double init_std, DType dtype) {
  weight_ = register_parameter(
      "weight", Tensor::randn({out_features, in_features}, init, dtype, 0.0, init_std));
  if (bias) bias_ = register_parameter("bias", Tensor::zeros({out_features}, dtype));
}

Tensor Linear::forward(const Tensor& x) const {
  return ops::linear(x, weight_, bias_);
}

}  // namespace topkformer::nn
