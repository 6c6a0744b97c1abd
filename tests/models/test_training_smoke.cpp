// A tiny model of each kind learns on real data: the IMDb classifier and a
// dual encoder on IMDb review pairs (real text), the language model on the
// WikiText-103 train prefix, and a ListOps classifier on generated data.
// Each repeats a few fixed batches with Adam and must lower its loss.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "topkformer/autograd/tape.h"
#include "topkformer/data/batcher.h"
#include "topkformer/data/byte_tokenizer.h"
#include "topkformer/data/data_root.h"
#include "topkformer/data/listops.h"
#include "topkformer/data/listops_tokenizer.h"
#include "topkformer/data/lm_corpus.h"
#include "topkformer/data/tsv_readers.h"
#include "topkformer/data/word_vocabulary.h"
#include "topkformer/models/models.h"
#include "topkformer/ops.h"

namespace topkformer {
namespace {

using attention::AttentionKind;

models::ModelConfig tiny_model(std::int64_t vocab, std::int64_t classes, AttentionKind kind) {
  models::ModelConfig config;
  config.vocab_size = vocab;
  config.max_length = 128;
  config.num_classes = classes;
  config.seed = 7;
  config.transformer.layers = 1;
  config.transformer.d_model = 32;
  config.transformer.heads = 2;
  config.transformer.d_ff = 64;
  config.transformer.dropout = 0.0;
  config.transformer.attention.kind = kind;
  config.transformer.attention.k = 16;
  config.transformer.attention.chunk_size = 32;
  return config;
}

// Adam (Kingma & Ba) on the host, enough to move a tiny model quickly; the
// trainer's optimizers are tested on their own.
class Adam {
 public:
  Adam(const nn::Module& model, double learning_rate) : learning_rate_(learning_rate) {
    for (const Tensor& parameter : model.parameters()) {
      parameters_.push_back(parameter);
      first_.emplace_back(parameter.numel(), 0.0);
      second_.emplace_back(parameter.numel(), 0.0);
    }
  }

  void step() {
    ++steps_;
    const double correction1 = 1.0 - std::pow(0.9, steps_),
                 correction2 = 1.0 - std::pow(0.999, steps_);
    for (std::size_t p = 0; p < parameters_.size(); ++p) {
      Tensor& parameter = parameters_[p];
      const Tensor grad = parameter.grad();
      if (!grad.defined()) continue;
      const std::vector<float> g = grad.to_vector<float>();
      float* values = parameter.data<float>();
      for (std::size_t i = 0; i < g.size(); ++i) {
        first_[p][i] = 0.9 * first_[p][i] + 0.1 * g[i];
        second_[p][i] = 0.999 * second_[p][i] + 0.001 * double(g[i]) * g[i];
        values[i] -= float(learning_rate_ * (first_[p][i] / correction1) /
                           (std::sqrt(second_[p][i] / correction2) + 1e-8));
      }
      parameter.zero_grad();
    }
  }

 private:
  double learning_rate_;
  int steps_ = 0;
  std::vector<Tensor> parameters_;
  std::vector<std::vector<double>> first_, second_;
};

// Runs `steps` steps cycling over `batches` losses and checks that the mean
// loss of the last round of batches is clearly below that of the first.
template <typename LossOfBatch>
void expect_loss_falls(nn::Module& model, std::int64_t batches, int rounds,
                       LossOfBatch loss_of_batch) {
  Adam optimizer(model, 3e-3);
  std::vector<double> round_means;
  for (int round = 0; round < rounds; ++round) {
    double total = 0.0;
    for (std::int64_t b = 0; b < batches; ++b) {
      const Tensor loss = loss_of_batch(b);
      total += loss.item();
      autograd::backward(loss);
      optimizer.step();
    }
    round_means.push_back(total / double(batches));
  }
  EXPECT_LT(round_means.back(), 0.8 * round_means.front())
      << "first round " << round_means.front() << ", last " << round_means.back();
}

TEST(TrainingSmoke, ImdbClassifierAndDualEncoder) {
  const std::filesystem::path file = data::data_file("imdb/train.tsv");
  TKF_SKIP_UNLESS_DATA_FILE(file);
  const data::TextRecords all = data::read_imdb_tsv(file);
  // Four reviews of each class (positives come first in the file).
  std::vector<data::TextRecord> records(all.records.begin(), all.records.begin() + 4);
  records.insert(records.end(), all.records.end() - 4, all.records.end());
  const data::ByteTokenizer bytes;
  const data::ClassificationDataset dataset(records, bytes, {96, false});
  data::BatcherOptions options;
  options.batch_size = 4;
  options.seed = 3;
  data::Batcher<data::ClassificationDataset> batcher(dataset, options);
  std::vector<data::Batch> batches{batcher.next(), batcher.next()};

  models::Classifier classifier(tiny_model(bytes.vocab_size(), 2, AttentionKind::topk));
  expect_loss_falls(classifier, 2, 20, [&](std::int64_t b) {
    return ops::cross_entropy(classifier.forward(batches[b].tokens, batches[b].lengths),
                              batches[b].labels);
  });

  // Pairs of reviews: label 1 when both have the same sentiment.
  std::vector<data::TextPairRecord> pairs;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto& first = records[i];
    const auto& second = records[(i + 3) % records.size()];
    pairs.push_back({"", "", first.text, second.text, first.label == second.label ? 1 : 0});
  }
  const data::PairDataset pair_dataset(pairs, bytes, {64, false});
  data::Batcher<data::PairDataset> pair_batcher(pair_dataset, options);
  std::vector<data::PairBatch> pair_batches{pair_batcher.next(), pair_batcher.next()};
  models::DualEncoder dual(tiny_model(bytes.vocab_size(), 2, AttentionKind::chunked));
  expect_loss_falls(dual, 2, 20, [&](std::int64_t b) {
    const data::PairBatch& batch = pair_batches[b];
    return ops::cross_entropy(
        dual.forward(batch.tokens1, batch.lengths1, batch.tokens2, batch.lengths2), batch.labels);
  });
}

TEST(TrainingSmoke, WikiTextLanguageModel) {
  const std::filesystem::path file = data::data_file("wikitext-103/wiki.train.prefix.tokens");
  TKF_SKIP_UNLESS_DATA_FILE(file);
  const auto vocabulary = data::WordVocabulary::build(file, 200);
  const std::filesystem::path cache_dir =
      std::filesystem::temp_directory_path() / "topkformer-training-smoke";
  const data::TokenCache cache(file, vocabulary, data::WordVocabulary::eos, cache_dir);
  const data::LmBlocks blocks(cache.ids(), 32);
  // Two batches of four blocks each: [4, 32] inputs and next-token targets.
  const auto batch = [&](std::int64_t first, bool targets) {
    std::vector<std::int64_t> ids;
    for (std::int64_t b = first; b < first + 4; ++b) {
      const data::LmExample example = blocks.block(b);
      for (std::uint32_t id : targets ? example.targets : example.inputs) ids.push_back(id);
    }
    return Tensor::from_vector<std::int64_t>({4, 32}, ids);
  };
  const std::vector<Tensor> inputs{batch(0, false), batch(4, false)};
  const std::vector<Tensor> targets{batch(0, true), batch(4, true)};
  models::LanguageModel model(tiny_model(vocabulary.vocab_size(), 0, AttentionKind::topk));
  expect_loss_falls(model, 2, 15,
                    [&](std::int64_t b) { return model.loss(inputs[b], targets[b]); });
}

TEST(TrainingSmoke, GeneratedListOpsClassifier) {
  data::ListOpsOptions options;
  options.min_length = 8;
  options.max_length = 40;
  options.max_depth = 4;
  std::vector<data::TextRecord> records;
  for (const data::ListOpsExample& example : data::generate_listops(8, 11, options)) {
    records.push_back({example.source, example.target});
  }
  const data::ListOpsTokenizer tokenizer;
  const data::ClassificationDataset dataset(records, tokenizer, {64, false});
  data::BatcherOptions batcher_options;
  batcher_options.batch_size = 4;
  data::Batcher<data::ClassificationDataset> batcher(dataset, batcher_options);
  std::vector<data::Batch> batches{batcher.next(), batcher.next()};
  models::Classifier classifier(tiny_model(tokenizer.vocab_size(), 10, AttentionKind::vanilla));
  expect_loss_falls(classifier, 2, 15, [&](std::int64_t b) {
    return ops::cross_entropy(classifier.forward(batches[b].tokens, batches[b].lengths),
                              batches[b].labels);
  });
}

}  // namespace
}  // namespace topkformer
