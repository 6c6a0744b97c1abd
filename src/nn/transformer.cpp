#include "topkformer/nn/transformer.h"

#include <cmath>
#include <memory>
#include <utility>
#include <vector>

#include "topkformer/autograd/grad_mode.h"
#include "topkformer/autograd/recompute.h"
#include "topkformer/kernels/backend.h"
#include "topkformer/ops.h"

namespace topkformer::nn {

namespace {
// Scales, in place, the parameters of `module` whose name is `name`.
void scale_parameter(const Module& module, const std::string& name, double factor) {
  for (auto& [parameter_name, tensor] : module.named_parameters()) {
    if (parameter_name == name)
      kernels::backend(tensor.device()).affine(tensor, factor, 0.0, tensor);
  }
}

// block(x) recomputed: only x (and memory) are kept; the backward pass
// runs the block again. The default generator is replayed by recompute();
// the block's buffers (Performer's features and redraw counter, which a
// training call may advance) are put back to their values before this call
// for the recomputation, which then leaves them as the first call did.
Tensor recomputed_block(const std::shared_ptr<TransformerBlock>& block, const Tensor& x,
                        const AttentionMask& self_mask, const Tensor& memory,
                        const AttentionMask& memory_mask) {
  std::vector<std::pair<Tensor, Tensor>> buffers;  // (buffer, its value before the call)
  for (const auto& [name, buffer] : block->named_buffers()) {
    buffers.emplace_back(buffer, buffer.clone());
  }
  std::vector<Tensor> inputs{x};
  if (memory.defined()) inputs.push_back(memory);
  auto calls = std::make_shared<int>(0);
  const std::vector<Tensor> outputs = autograd::recompute(
      [block, self_mask, memory_mask, buffers, calls](const std::vector<Tensor>& in) {
        if ((*calls)++ > 0) {
          for (const auto& [buffer, before] : buffers) Tensor(buffer).copy_(before);
        }
        const Tensor no_memory;
        return std::vector<Tensor>{
            block->forward(in[0], self_mask, in.size() > 1 ? in[1] : no_memory, memory_mask)};
      },
      inputs);
  return outputs[0];
}
}  // namespace

TransformerBlock::TransformerBlock(const TransformerConfig& config, Generator& init, DType dtype)
    : pre_layer_norm_(config.pre_layer_norm) {
  TKF_CHECK(config.layers >= 1 && config.d_model >= 1 && config.d_ff >= 1 &&
                config.dropout >= 0.0 && config.dropout < 1.0,
            "TransformerBlock: layers, d_model and d_ff must be >= 1 and dropout in [0, 1)");
  self_attention_ = register_module(
      "self_attn", std::make_shared<MultiHeadAttention>(config.d_model, config.heads,
                                                        config.attention, init, dtype));
  self_norm_ =
      register_module("self_attn_norm", std::make_shared<LayerNorm>(config.d_model, 1e-5, dtype));
  if (config.cross_attention) {
    cross_attention_ = register_module(
        "cross_attn", std::make_shared<MultiHeadAttention>(config.d_model, config.heads,
                                                           config.attention, init, dtype));
    cross_norm_ = register_module("cross_attn_norm",
                                  std::make_shared<LayerNorm>(config.d_model, 1e-5, dtype));
  }
  feed_forward_ = register_module(
      "ff",
      std::make_shared<FeedForward>(config.d_model, config.d_ff, config.feed_forward, init, dtype));
  feed_forward_norm_ =
      register_module("ff_norm", std::make_shared<LayerNorm>(config.d_model, 1e-5, dtype));
  dropout_ = register_module("dropout", std::make_shared<Dropout>(config.dropout));

  const double residual_scale = 1.0 / std::sqrt(2.0 * double(config.layers));
  scale_parameter(*self_attention_, "out_proj.weight", residual_scale);
  if (cross_attention_) scale_parameter(*cross_attention_, "out_proj.weight", residual_scale);
  scale_parameter(*feed_forward_, "fc2.weight", residual_scale);
}

Tensor TransformerBlock::sublayer(const Tensor& x, const LayerNorm& norm,
                                  const std::function<Tensor(const Tensor&)>& body) const {
  if (pre_layer_norm_) return ops::add(x, dropout_->forward(body(norm.forward(x))));
  return norm.forward(ops::add(x, dropout_->forward(body(x))));
}

Tensor TransformerBlock::forward(const Tensor& x, const AttentionMask& self_mask,
                                 const Tensor& memory, const AttentionMask& memory_mask) {
  Tensor h = sublayer(x, *self_norm_, [&](const Tensor& in) {
    return self_attention_->forward(in, {}, self_mask);
  });
  if (cross_attention_) {
    TKF_CHECK(memory.defined(), "TransformerBlock: a block with cross-attention needs memory");
    h = sublayer(h, *cross_norm_, [&](const Tensor& in) {
      return cross_attention_->forward(in, memory, memory_mask);
    });
  }
  return sublayer(h, *feed_forward_norm_,
                  [&](const Tensor& in) { return feed_forward_->forward(in); });
}

void TransformerBlock::set_attention(const attention::AttentionConfig& config) {
  self_attention_->set_config(config);
  if (cross_attention_) cross_attention_->set_config(config);
}

void TransformerBlock::set_feed_forward(const FeedForwardConfig& config) {
  feed_forward_->set_config(config);
}

TransformerStack::TransformerStack(const TransformerConfig& config, Generator& init, DType dtype)
    : recompute_layers_(config.recompute_layers) {
  for (std::int64_t i = 0; i < config.layers; ++i) {
    blocks_.push_back(register_module("layers." + std::to_string(i),
                                      std::make_shared<TransformerBlock>(config, init, dtype)));
  }
  if (config.pre_layer_norm) {
    final_norm_ =
        register_module("final_norm", std::make_shared<LayerNorm>(config.d_model, 1e-5, dtype));
  }
}

Tensor TransformerStack::forward(const Tensor& x, const AttentionMask& self_mask,
                                 const Tensor& memory, const AttentionMask& memory_mask) {
  // Recomputation only pays when a backward pass will follow.
  const bool recomputing = recompute_layers_ && autograd::GradMode::enabled();
  Tensor h = x;
  for (const auto& block : blocks_) {
    h = recomputing ? recomputed_block(block, h, self_mask, memory, memory_mask)
                    : block->forward(h, self_mask, memory, memory_mask);
  }
  return final_norm_ ? final_norm_->forward(h) : h;
}

void TransformerStack::set_attention(const attention::AttentionConfig& config) {
  for (const auto& block : blocks_) block->set_attention(config);
}

void TransformerStack::set_feed_forward(const FeedForwardConfig& config) {
  for (const auto& block : blocks_) block->set_feed_forward(config);
}

}  // namespace topkformer::nn
