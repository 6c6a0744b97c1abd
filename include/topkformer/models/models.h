// The task models of the LRA and WikiText experiments. Parameter names are
// dotted module paths (`encoder.layers.0.self_attn.q_proj.weight`), which
// checkpoints use.
#pragma once

#include <memory>
#include <string>

#include "topkformer/nn/transformer.h"

namespace topkformer::models {

enum class Pooling { cls, mean, count };
inline constexpr auto pooling_names = std::to_array<std::string_view>({"cls", "mean"});
static_assert(names_match<Pooling>(pooling_names));

struct ModelConfig {
  std::int64_t vocab_size = 0;
  std::int64_t max_length = 1024;  // longest input the position table covers
  nn::PositionKind positions = nn::PositionKind::learned;
  // Token embeddings: normal(0, embedding_init_std), multiplied by
  // sqrt(d_model) at the input when scale_embeddings (Vaswani et al. §3.4).
  // Fixed sinusoids have unit scale, so the token signal must be comparable:
  // LRA initialises with std 1, fairseq with d_model^-0.5 and the scale.
  double embedding_init_std = 0.02;
  bool scale_embeddings = false;
  nn::TransformerConfig transformer;
  // Classifier and dual encoder.
  std::int64_t num_classes = 2;
  Pooling pooling = Pooling::mean;  // cls: the data prepends the tokenizer's CLS id
  std::int64_t head_hidden = 0;     // hidden width of the MLP head (0: d_model)
  // Language model: output projection shares the input embedding matrix.
  bool tie_embeddings = true;
  std::uint64_t seed = 0;    // initialisation seed
  DType dtype = DType::f32;  // f64 for gradient checks
};

enum class ModelKind { classifier, dual_encoder, language_model };

// The values the model of a config holds, counted from the config alone (in
// double: a config may ask for more than an int64 counts), so that a model
// that cannot fit is refused before anything is allocated. `parameters` are
// the trained values (each also has a gradient and optimizer state);
// `buffers` the floating-point buffers (a sinusoid table, Performer's
// features). A test keeps both equal to what the constructors build.
struct ModelValues {
  double parameters = 0.0;
  double buffers = 0.0;
};
ModelValues count_values(const ModelConfig& config, ModelKind kind);

// Token embeddings + positions + a Transformer stack: the part every task shares.
class SequenceEncoder : public nn::Module {
 public:
  SequenceEncoder(const ModelConfig& config, bool causal, Generator& init);
  // tokens [B, L] i32/i64; lengths [B] (undefined: no padding) -> [B, L, d_model]
  Tensor forward(const Tensor& tokens, const Tensor& lengths);
  const nn::Embedding& embedding() const { return *embedding_; }
  nn::TransformerStack& stack() { return *stack_; }

 private:
  bool causal_;
  double embedding_scale_;  // 1 or sqrt(d_model)
  std::shared_ptr<nn::Embedding> embedding_;
  std::shared_ptr<nn::PositionalEncoding> positions_;
  std::shared_ptr<nn::Dropout> dropout_;
  std::shared_ptr<nn::TransformerStack> stack_;
};

// Pools encoder states [B, L, D] to [B, D]: the first (CLS) position, or the
// mean over the first lengths[b] positions (padding never contributes).
Tensor pool(const Tensor& states, const Tensor& lengths, Pooling pooling);

// MLP head: Linear(in, hidden) -> GELU -> Linear(hidden, classes).
class ClassifierHead : public nn::Module {
 public:
  ClassifierHead(std::int64_t in_features, std::int64_t hidden, std::int64_t classes,
                 Generator& init, DType dtype);
  Tensor forward(const Tensor& features) const;

 private:
  std::shared_ptr<nn::Linear> hidden_, output_;
};

// LRA ListOps (10 classes) and IMDb text (2 classes).
class Classifier : public nn::Module {
 public:
  explicit Classifier(const ModelConfig& config);
  Tensor forward(const Tensor& tokens, const Tensor& lengths);  // -> logits [B, classes]
  SequenceEncoder& encoder() { return *encoder_; }

 private:
  Pooling pooling_;
  std::shared_ptr<SequenceEncoder> encoder_;
  std::shared_ptr<ClassifierHead> head_;
};

// LRA AAN retrieval: one shared encoder for both documents; the head sees
// [u, v, u * v, u - v] and predicts 2 classes.
class DualEncoder : public nn::Module {
 public:
  explicit DualEncoder(const ModelConfig& config);
  Tensor forward(const Tensor& tokens1, const Tensor& lengths1, const Tensor& tokens2,
                 const Tensor& lengths2);  // -> logits [B, classes]
  SequenceEncoder& encoder() { return *encoder_; }

 private:
  Pooling pooling_;
  std::shared_ptr<SequenceEncoder> encoder_;
  std::shared_ptr<ClassifierHead> head_;
};

// WikiText-103: a causal decoder predicting the next token.
class LanguageModel : public nn::Module {
 public:
  explicit LanguageModel(const ModelConfig& config);
  Tensor forward(const Tensor& tokens);  // [B, L] -> logits [B, L, vocab]
  // Mean next-token cross-entropy of logits(inputs) against targets [B, L].
  Tensor loss(const Tensor& inputs, const Tensor& targets, std::int64_t ignore_index = -100);
  SequenceEncoder& decoder() { return *decoder_; }

 private:
  std::shared_ptr<SequenceEncoder> decoder_;
  std::shared_ptr<nn::Linear> output_;  // only when embeddings are not tied
};

}  // namespace topkformer::models
