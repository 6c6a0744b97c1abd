#include "topkformer/models/models.h"
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
