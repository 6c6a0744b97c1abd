#include "topkformer/nn/layers.h"

#include <cmath>

#include "topkformer/ops.h"

namespace topkformer::nn {

Embedding::Embedding(std::int64_t vocab, std::int64_t d_model, Generator& init, double init_std,
                     DType dtype) {
  weight_ =
      register_parameter("weight", Tensor::randn({vocab, d_model}, init, dtype, 0.0, init_std));
}

Tensor Embedding::forward(const Tensor& ids) const {
  return ops::embedding(weight_, ids);
}

namespace {
Tensor sinusoids(std::int64_t max_length, std::int64_t d_model) {
  std::vector<double> table(max_length * d_model);
  for (std::int64_t position = 0; position < max_length; ++position) {
    for (std::int64_t i = 0; i < d_model; ++i) {
      const double frequency = std::pow(10000.0, -double(2 * (i / 2)) / double(d_model));
      const double angle = double(position) * frequency;
      table[position * d_model + i] = i % 2 == 0 ? std::sin(angle) : std::cos(angle);
    }
  }
  return Tensor::from_vector<double>({max_length, d_model}, table);
}
}  // namespace

PositionalEncoding::PositionalEncoding(PositionKind kind, std::int64_t max_length,
                                       std::int64_t d_model, Generator& init, double init_std,
                                       DType dtype) {
  if (kind == PositionKind::learned) {
    table_ = register_parameter("weight",
                                Tensor::randn({max_length, d_model}, init, dtype, 0.0, init_std));
  } else {
    table_ = register_buffer("sinusoids", sinusoids(max_length, d_model).to(dtype));
  }
}

Tensor PositionalEncoding::forward(const Tensor& x) const {
  TKF_CHECK(x.dim() == 3 && x.size(1) <= table_.size(0) && x.size(2) == table_.size(1),
            "PositionalEncoding: input ", shape_str(x.shape()), " needs [B, L <= ", table_.size(0),
            ", ", table_.size(1), "]");
  return ops::add(x, ops::narrow(table_, 0, 0, x.size(1)));
}

LayerNorm::LayerNorm(std::int64_t d_model, double eps, DType dtype) : eps_(eps) {
  weight_ = register_parameter("weight", Tensor::ones({d_model}, dtype));
  bias_ = register_parameter("bias", Tensor::zeros({d_model}, dtype));
}

Tensor LayerNorm::forward(const Tensor& x) const {
  return ops::layer_norm(x, weight_, bias_, eps_);
}

Tensor Dropout::forward(const Tensor& x) const {
  return is_training() && p_ > 0.0 ? ops::dropout(x, p_) : x;
}

}  // namespace topkformer::nn
