#include "topkformer/models/models.h"
#include "topkformer/ops.h"

namespace topkformer::models {

namespace {
std::int64_t head_width(const ModelConfig& config) {
  return config.head_hidden > 0 ? config.head_hidden : config.transformer.d_model;
}
}  // namespace

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
