// y = x W^T + b with W [out, in], initialised normal(0, init_std), b = 0.
#pragma once

#include "topkformer/core/rng.h"
#include "topkformer/nn/module.h"

namespace topkformer::nn {

class Linear : public Module {
 public:
  Linear(std::int64_t in_features, std::int64_t out_features, bool bias, Generator& init,
         double init_std = 0.02, DType dtype = DType::f32);
  Tensor forward(const Tensor& x) const;
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }  // undefined when built without bias

 private:
  Tensor weight_;
  Tensor bias_;
};

}  // namespace topkformer::nn
