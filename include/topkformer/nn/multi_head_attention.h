// Multi-head attention with a swappable variant (attention::AttentionKind).
#pragma once

#include <memory>

#include "topkformer/attention/config.h"
#include "topkformer/nn/linear.h"

namespace topkformer::nn {

// What a call may not attend to: future positions (causal) and padding.
struct AttentionMask {
  bool causal = false;
  Tensor key_lengths;  // [B] i32/i64 on the CPU: keys at or past the length are padding
};

class MultiHeadAttention : public Module {
 public:
  MultiHeadAttention(std::int64_t d_model, std::int64_t heads,
                     const attention::AttentionConfig& config, Generator& init,
                     DType dtype = DType::f32);

  // Self-attention over x [B, L, d_model], or cross-attention from x to
  // `memory` [B, Lk, d_model] when memory is defined. Returns [B, L, d_model].
  Tensor forward(const Tensor& x, const Tensor& memory = {}, const AttentionMask& mask = {});

  // Switches the variant (e.g. to evaluate a vanilla-trained model with top-k).
  // Performer features are drawn if the layer has none yet.
  void set_config(const attention::AttentionConfig& config);
  const attention::AttentionConfig& config() const { return config_; }
  std::int64_t heads() const { return heads_; }

 private:
  Tensor split_heads(const Tensor& x) const;  // [B, L, D] -> [B, H, L, D/H]
  void draw_features();

  std::int64_t d_model_, heads_, head_dim_;
  attention::AttentionConfig config_;
  DType dtype_;
  std::shared_ptr<Linear> q_proj_, k_proj_, v_proj_, out_proj_;
  // Performer: the random features, and the state that decides redraws. The
  // n-th draw uses the words at n * (words per draw) of the stream
  // feature_seed_, so a resumed run draws the same features.
  Tensor features_;       // [num_features, head_dim]
  Tensor feature_calls_;  // i64 [2]: training calls so far, draws so far
  std::uint64_t feature_seed_ = 0;
};

}  // namespace topkformer::nn
