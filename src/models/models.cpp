// The task models (models.h), in the header's order: what a config holds,
// the shared encoder and pooling, then one section per model class.
#include "topkformer/models/models.h"

#include <cmath>

#include "topkformer/kernels/backend.h"
#include "topkformer/ops.h"

namespace topkformer::models {

namespace {
std::int64_t head_width(const ModelConfig& config) {
  return config.head_hidden > 0 ? config.head_hidden : config.transformer.d_model;
}

// A Linear's weight and bias.
double linear_values(double in, double out, bool bias = true) {
  return in * out + (bias ? out : 0.0);
}
}  // namespace

ModelValues count_values(const ModelConfig& config, ModelKind kind) {
  const nn::TransformerConfig& stack = config.transformer;
  const double d = double(stack.d_model), norm = 2.0 * d;
  ModelValues values;
  // Each attention: four d x d projections with biases, and Performer's features.
  const double attentions = stack.cross_attention ? 2.0 : 1.0;
  const double block = attentions * (4.0 * linear_values(d, d) + norm) +
                       linear_values(d, double(stack.d_ff)) + linear_values(double(stack.d_ff), d) +
                       norm;
  values.parameters = double(stack.layers) * block + (stack.pre_layer_norm ? norm : 0.0);
  if (stack.attention.kind == attention::AttentionKind::performer && stack.heads >= 1) {
    values.buffers += double(stack.layers) * attentions * double(stack.attention.num_features) *
                      (d / double(stack.heads));
  }
  values.parameters += double(config.vocab_size) * d;  // the token embedding
  const double positions = double(config.max_length) * d;
  (config.positions == nn::PositionKind::learned ? values.parameters : values.buffers) += positions;
  const double hidden = double(head_width(config));
  switch (kind) {
    case ModelKind::classifier:
    case ModelKind::dual_encoder:
      values.parameters +=
          linear_values((kind == ModelKind::dual_encoder ? 4.0 : 1.0) * d, hidden) +
          linear_values(hidden, double(config.num_classes));
      break;
    case ModelKind::language_model:
      if (!config.tie_embeddings)
        values.parameters += linear_values(d, double(config.vocab_size), false);
      break;
  }
  return values;
}

SequenceEncoder::SequenceEncoder(const ModelConfig& config, bool causal, Generator& init)
    : causal_(causal),
      embedding_scale_(config.scale_embeddings ? std::sqrt(double(config.transformer.d_model))
                                               : 1.0) {
  TKF_CHECK(config.vocab_size >= 1 && config.max_length >= 1,
            "model: vocab_size and max_length must be >= 1, got ", config.vocab_size, " and ",
            config.max_length);
  const std::int64_t d_model = config.transformer.d_model;
  embedding_ = register_module(
      "embedding", std::make_shared<nn::Embedding>(config.vocab_size, d_model, init,
                                                   config.embedding_init_std, config.dtype));
  positions_ = register_module(
      "positions", std::make_shared<nn::PositionalEncoding>(config.positions, config.max_length,
                                                            d_model, init, 0.02, config.dtype));
  dropout_ = register_module("dropout", std::make_shared<nn::Dropout>(config.transformer.dropout));
  // The stack's blocks appear as `layers.N` directly under the encoder.
  stack_ = register_module(
      "", std::make_shared<nn::TransformerStack>(config.transformer, init, config.dtype));
}

Tensor SequenceEncoder::forward(const Tensor& tokens, const Tensor& lengths) {
  TKF_CHECK(tokens.dim() == 2, "model: tokens must be [B, L], got ", shape_str(tokens.shape()));
  Tensor x = embedding_->forward(tokens);
  if (embedding_scale_ != 1.0) x = ops::scale(x, embedding_scale_);
  x = dropout_->forward(positions_->forward(x));
  // Lengths to the device once per batch, not once per layer.
  return stack_->forward(
      x, nn::AttentionMask{causal_, lengths.defined() ? lengths.to(x.device()) : Tensor()});
}

Tensor pool(const Tensor& states, const Tensor& lengths, Pooling pooling) {
  if (pooling == Pooling::cls) return ops::select(states, 1, 0);
  const std::int64_t batch = states.size(0), length = states.size(1);
  // weights[b, 0, i] = 1 / lengths[b] on valid positions, 0 on padding: the
  // softmax of zeros under the padding mask, built on the states' device.
  const Tensor zeros = Tensor::zeros({batch, 1, length}, states.dtype(), states.device());
  const Tensor weights = Tensor::empty(zeros.shape(), zeros.dtype(), zeros.device());
  const Tensor valid = lengths.defined() ? lengths.to(states.device()) : Tensor();
  kernels::backend(states.device())
      .softmax(zeros, kernels::RowMask{false, 0, valid}, false, weights);
  return ops::reshape(ops::matmul(weights, states), {batch, states.size(2)});
}

ClassifierHead::ClassifierHead(std::int64_t in_features, std::int64_t hidden, std::int64_t classes,
                               Generator& init, DType dtype) {
  // LeCun normal, std fan_in^-1/2 (the default of flax's Dense, which LRA's
  // head uses): with std 0.02 at d_model 64 the two layers pass ~1% of the
  // pooled signal on and training sits on the saddle at zero for hundreds of steps.
  const auto lecun = [](std::int64_t fan_in) { return 1.0 / std::sqrt(double(fan_in)); };
  hidden_ = register_module("hidden", std::make_shared<nn::Linear>(in_features, hidden, true, init,
                                                                   lecun(in_features), dtype));
  output_ = register_module(
      "output", std::make_shared<nn::Linear>(hidden, classes, true, init, lecun(hidden), dtype));
}

Tensor ClassifierHead::forward(const Tensor& features) const {
  return output_->forward(ops::gelu(hidden_->forward(features), ops::GeluApproximation::erf));
}

Classifier::Classifier(const ModelConfig& config) : pooling_(config.pooling) {
  Generator init(config.seed);
  encoder_ = register_module("encoder", std::make_shared<SequenceEncoder>(config, false, init));
  head_ = register_module(
      "head", std::make_shared<ClassifierHead>(config.transformer.d_model, head_width(config),
                                               config.num_classes, init, config.dtype));
}

Tensor Classifier::forward(const Tensor& tokens, const Tensor& lengths) {
  return head_->forward(pool(encoder_->forward(tokens, lengths), lengths, pooling_));
}

DualEncoder::DualEncoder(const ModelConfig& config) : pooling_(config.pooling) {
  Generator init(config.seed);
  encoder_ = register_module("encoder", std::make_shared<SequenceEncoder>(config, false, init));
  head_ = register_module(
      "head", std::make_shared<ClassifierHead>(4 * config.transformer.d_model, head_width(config),
                                               config.num_classes, init, config.dtype));
}

Tensor DualEncoder::forward(const Tensor& tokens1, const Tensor& lengths1, const Tensor& tokens2,
                            const Tensor& lengths2) {
  const Tensor u = pool(encoder_->forward(tokens1, lengths1), lengths1, pooling_);
  const Tensor v = pool(encoder_->forward(tokens2, lengths2), lengths2, pooling_);
  return head_->forward(ops::concat({u, v, ops::mul(u, v), ops::sub(u, v)}, 1));
}

LanguageModel::LanguageModel(const ModelConfig& config) {
  Generator init(config.seed);
  decoder_ = register_module("decoder", std::make_shared<SequenceEncoder>(config, true, init));
  if (!config.tie_embeddings) {
    output_ = register_module(
        "output",
        std::make_shared<nn::Linear>(config.transformer.d_model, config.vocab_size, false, init));
  }
}

Tensor LanguageModel::forward(const Tensor& tokens) {
  const Tensor states = decoder_->forward(tokens, {});
  // Tied: logits are the states' products with the input embedding rows.
  return output_ ? output_->forward(states)
                 : ops::matmul(states, decoder_->embedding().weight(), false, true);
}

Tensor LanguageModel::loss(const Tensor& inputs, const Tensor& targets, std::int64_t ignore_index) {
  TKF_CHECK(inputs.shape() == targets.shape(), "LanguageModel::loss: inputs ",
            shape_str(inputs.shape()), " and targets ", shape_str(targets.shape()), " differ");
  return ops::cross_entropy(forward(inputs), targets, ignore_index);
}

}  // namespace topkformer::models
