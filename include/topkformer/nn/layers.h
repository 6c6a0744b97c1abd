// Small modules: embeddings, positions, layer norm and dropout.
#pragma once

#include "topkformer/core/names.h"
#include "topkformer/core/rng.h"
#include "topkformer/nn/module.h"

namespace topkformer::nn {

// Token embeddings [vocab, d_model], initialised normal(0, init_std).
class Embedding : public Module {
 public:
  Embedding(std::int64_t vocab, std::int64_t d_model, Generator& init, double init_std = 0.02,
            DType dtype = DType::f32);
  Tensor forward(const Tensor& ids) const;  // ids [...] i32/i64 -> [..., d_model]
  const Tensor& weight() const { return weight_; }

 private:
  Tensor weight_;
};

enum class PositionKind { learned, sinusoidal, count };
inline constexpr auto position_kind_names =
    std::to_array<std::string_view>({"learned", "sinusoidal"});
static_assert(names_match<PositionKind>(position_kind_names));

// Adds position information to x [B, L, d_model] for L <= max_length: a learned
// table (a parameter) or the fixed sinusoids of Vaswani et al. (a buffer).
class PositionalEncoding : public Module {
 public:
  PositionalEncoding(PositionKind kind, std::int64_t max_length, std::int64_t d_model,
                     Generator& init, double init_std = 0.02, DType dtype = DType::f32);
  Tensor forward(const Tensor& x) const;

 private:
  Tensor table_;  // [max_length, d_model]
};

// Layer normalisation with a learned gain (ones) and bias (zeros).
class LayerNorm : public Module {
 public:
  explicit LayerNorm(std::int64_t d_model, double eps = 1e-5, DType dtype = DType::f32);
  Tensor forward(const Tensor& x) const;

 private:
  Tensor weight_, bias_;
  double eps_;
};

// Dropout in training mode, identity in evaluation; draws from the default generator.
class Dropout : public Module {
 public:
  explicit Dropout(double p) : p_(p) {}
  Tensor forward(const Tensor& x) const;

 private:
  double p_;
};

}  // namespace topkformer::nn
