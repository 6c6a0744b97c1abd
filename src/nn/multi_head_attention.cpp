#include "topkformer/nn/multi_head_attention.h"

#include <cmath>

#include "topkformer/attention/functional.h"
#include "topkformer/ops.h"

namespace topkformer::nn {

using attention::AttentionKind;

MultiHeadAttention::MultiHeadAttention(std::int64_t d_model, std::int64_t heads,
                                       const attention::AttentionConfig& config, Generator& init,
                                       DType dtype)
    : d_model_(d_model), heads_(heads), config_(config), dtype_(dtype) {
  TKF_CHECK(heads >= 1 && d_model % heads == 0, "MultiHeadAttention: d_model ", d_model,
            " is not divisible by ", heads, " heads");
  head_dim_ = d_model / heads;
  q_proj_ = register_module("q_proj",
                            std::make_shared<Linear>(d_model, d_model, true, init, 0.02, dtype));
  k_proj_ = register_module("k_proj",
                            std::make_shared<Linear>(d_model, d_model, true, init, 0.02, dtype));
  v_proj_ = register_module("v_proj",
                            std::make_shared<Linear>(d_model, d_model, true, init, 0.02, dtype));
  out_proj_ = register_module("out_proj",
                              std::make_shared<Linear>(d_model, d_model, true, init, 0.02, dtype));
  // The feature stream's seed comes from the init generator, so it is seeded like the weights.
  const PhiloxState words = init.reserve(2);
  feature_seed_ = std::uint64_t{philox_word(words.seed, words.offset)} << 32 |
                  philox_word(words.seed, words.offset + 1);
  set_config(config);
}

void MultiHeadAttention::set_config(const attention::AttentionConfig& config) {
  TKF_CHECK(config.chunk_size >= 1 && config.k >= 1 && config.num_features >= 1 &&
                config.feature_redraw_interval >= 0 && config.dropout >= 0.0 &&
                config.dropout < 1.0,
            "MultiHeadAttention: invalid attention config (chunk_size, k and num_features must "
            "be >= 1, feature_redraw_interval >= 0, dropout in [0, 1))");
  config_ = config;
  if (config.kind == AttentionKind::performer &&
      (!features_.defined() || features_.size(0) != config.num_features)) {
    features_ = register_buffer("performer_features",
                                Tensor::empty({config.num_features, head_dim_}, dtype_));
    feature_calls_ = register_buffer("performer_calls", Tensor::zeros({2}, DType::i64));
    draw_features();
  }
}

void MultiHeadAttention::draw_features() {
  // Every draw takes the same number of words, so draw n starts at a fixed offset.
  const std::int64_t blocks = (config_.num_features + head_dim_ - 1) / head_dim_;
  const std::uint64_t words_per_draw =
      words_per_normal *
      std::uint64_t(blocks * head_dim_ * head_dim_ + config_.num_features * head_dim_);
  std::int64_t& draws = feature_calls_.at<std::int64_t>({1});
  Generator generator(feature_seed_);
  generator.set_state({feature_seed_, std::uint64_t(draws) * words_per_draw});
  features_.copy_(
      attention::draw_performer_projection(config_.num_features, head_dim_, generator, dtype_));
  ++draws;
}

Tensor MultiHeadAttention::split_heads(const Tensor& x) const {
  const Tensor split = ops::reshape(x, {x.size(0), x.size(1), heads_, head_dim_});
  return ops::contiguous(ops::transpose(split, 1, 2));
}

Tensor MultiHeadAttention::forward(const Tensor& x, const Tensor& memory,
                                   const AttentionMask& mask) {
  TKF_CHECK(x.dim() == 3 && x.size(2) == d_model_, "MultiHeadAttention: input ",
            shape_str(x.shape()), " is not [B, L, ", d_model_, "]");
  const Tensor& source = memory.defined() ? memory : x;
  const Tensor q = split_heads(q_proj_->forward(x));
  const Tensor k = split_heads(k_proj_->forward(source));
  const Tensor v = split_heads(v_proj_->forward(source));

  attention::AttentionContext context;
  context.causal = mask.causal;
  // Lengths may come from the host: kernels read them on the data's device.
  if (mask.key_lengths.defined()) context.key_lengths = mask.key_lengths.to(x.device());
  context.scale = 1.0 / std::sqrt(double(head_dim_));
  if (is_training() && config_.dropout > 0.0) {
    context.dropout = config_.dropout;
    context.dropout_state =
        default_generator().reserve(std::uint64_t(q.size(0) * heads_ * q.size(2) * k.size(2)));
  }

  Tensor attended;
  switch (config_.kind) {
    case AttentionKind::vanilla:
      attended = attention::vanilla_attention(q, k, v, context);
      break;
    case AttentionKind::chunked:
      attended = attention::chunked_attention(q, k, v, context, config_.chunk_size);
      break;
    case AttentionKind::topk:
      attended = attention::topk_attention(q, k, v, context, config_.k, config_.chunk_size);
      break;
    case AttentionKind::performer:
      if (is_training() && config_.feature_redraw_interval > 0) {
        std::int64_t& calls = feature_calls_.at<std::int64_t>({0});
        if (calls > 0 && calls % config_.feature_redraw_interval == 0) draw_features();
        ++calls;
      }
      attended = attention::performer_attention(q, k, v, context, features_);
      break;
    case AttentionKind::count:
      throw Error("MultiHeadAttention: count is not an attention kind");
  }
  // [B, H, L, dh] -> [B, L, H * dh]
  const Tensor merged = ops::reshape(ops::contiguous(ops::transpose(attended, 1, 2)),
                                     {x.size(0), x.size(1), d_model_});
  return out_proj_->forward(merged);
}

}  // namespace topkformer::nn
