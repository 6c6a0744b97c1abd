// Transformer blocks and stacks: the attention and feed-forward variants plug
// in through their configs, per stack.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "topkformer/nn/feed_forward.h"
#include "topkformer/nn/layers.h"
#include "topkformer/nn/multi_head_attention.h"

namespace topkformer::nn {

struct TransformerConfig {
  std::int64_t layers = 2;
  std::int64_t d_model = 128;
  std::int64_t heads = 4;
  std::int64_t d_ff = 512;
  bool pre_layer_norm = true;  // pre-LN (x + f(LN(x))) or post-LN (LN(x + f(x)))
  bool cross_attention = false;
  double dropout = 0.1;  // on sublayer outputs (attention dropout is attention.dropout)
  attention::AttentionConfig attention;
  FeedForwardConfig feed_forward;
  // Each block keeps only its input and is recomputed in the backward pass
  // (autograd::recompute): the same outputs and gradients, less memory.
  bool recompute_layers = false;
};

// One block: self-attention, optional cross-attention to `memory`, feed-forward,
// each with a residual connection, dropout and layer norm.
//
// Initialisation: every weight normal(0, 0.02), biases 0, LN gains 1; the
// projections that write into the residual stream (attention out_proj, fc2)
// are scaled by 1/sqrt(2 * layers) so the residual variance does not grow
// with depth (GPT-2).
class TransformerBlock : public Module {
 public:
  TransformerBlock(const TransformerConfig& config, Generator& init, DType dtype = DType::f32);
  Tensor forward(const Tensor& x, const AttentionMask& self_mask, const Tensor& memory = {},
                 const AttentionMask& memory_mask = {});
  void set_attention(const attention::AttentionConfig& config);
  void set_feed_forward(const FeedForwardConfig& config);

 private:
  Tensor sublayer(const Tensor& x, const LayerNorm& norm,
                  const std::function<Tensor(const Tensor&)>& body) const;

  bool pre_layer_norm_;
  std::shared_ptr<MultiHeadAttention> self_attention_, cross_attention_;
  std::shared_ptr<FeedForward> feed_forward_;
  std::shared_ptr<LayerNorm> self_norm_, cross_norm_, feed_forward_norm_;
  std::shared_ptr<Dropout> dropout_;
};

// N blocks (and a final layer norm for pre-LN stacks). An encoder attends in
// both directions; a decoder is the same stack called with a causal mask.
// With config.recompute_layers every block is an autograd::recompute.
class TransformerStack : public Module {
 public:
  TransformerStack(const TransformerConfig& config, Generator& init, DType dtype = DType::f32);
  Tensor forward(const Tensor& x, const AttentionMask& self_mask, const Tensor& memory = {},
                 const AttentionMask& memory_mask = {});
  void set_attention(const attention::AttentionConfig& config);
  void set_feed_forward(const FeedForwardConfig& config);
  void set_recompute_layers(bool recompute_layers) { recompute_layers_ = recompute_layers; }
  bool recompute_layers() const { return recompute_layers_; }

 private:
  bool recompute_layers_;
  std::vector<std::shared_ptr<TransformerBlock>> blocks_;
  std::shared_ptr<LayerNorm> final_norm_;
};

}  // namespace topkformer::nn
