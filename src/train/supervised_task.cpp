#include "supervised_task.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <numeric>
#include <span>

#include <spdlog/spdlog.h>

#include "task_data.h"
#include "topkformer/core/error.h"
#include "topkformer/core/runtime.h"
#include "topkformer/ops.h"

namespace topkformer::train {
namespace {

std::int64_t total(const Tensor& lengths) {
  const std::vector<std::int64_t> values = lengths.to_vector<std::int64_t>();
  return std::accumulate(values.begin(), values.end(), std::int64_t{0});
}

// Texts are cut to data.max_length tokens, CLS included when the model pools it.
data::TokenizeOptions tokenize_options(const Config& config) {
  return {config.data.max_length, config.model.pooling == models::Pooling::cls};
}

// What differs between the classifier and the dual encoder: the file format
// a split is read in and how a batch goes through the model.
struct ClassificationKind {
  using Dataset = data::ClassificationDataset;
  using Model = models::Classifier;
  using Batch = data::Batch;

  static data::TsvFormat format(const Config& config) {
    return config.data.task == TaskKind::listops ? data::TsvFormat::listops : data::TsvFormat::imdb;
  }
  static Tensor logits(Model& model, const data::Batch& batch) {
    return model.forward(batch.tokens, batch.lengths);
  }
  static std::int64_t tokens(const data::Batch& batch) { return total(batch.lengths); }
  static Batch synthetic(const Tensor& tokens, const Tensor& lengths, const Tensor& labels) {
    return {tokens, lengths, labels};
  }
};

struct RetrievalKind {
  using Dataset = data::PairDataset;
  using Model = models::DualEncoder;
  using Batch = data::PairBatch;

  static data::TsvFormat format(const Config&) { return data::TsvFormat::aan; }
  static Tensor logits(Model& model, const data::PairBatch& batch) {
    return model.forward(batch.tokens1, batch.lengths1, batch.tokens2, batch.lengths2);
  }
  static std::int64_t tokens(const data::PairBatch& batch) {
    return total(batch.lengths1) + total(batch.lengths2);
  }
  // Both texts of a pair at the longest length.
  static Batch synthetic(const Tensor& tokens, const Tensor& lengths, const Tensor& labels) {
    return {tokens, lengths, tokens, lengths, labels};
  }
};

// A split through its token cache, `limit` items spread through it (0: all).
// The C library's heap gives back what tokenizing freed.
template <typename Kind>
typename Kind::Dataset load(const Config& config, const data::Tokenizer& tokenizer,
                            const std::filesystem::path& path, std::int64_t limit) {
  data::TokenTable table =
      data::read_token_table(path, Kind::format(config), tokenizer, tokenize_options(config),
                             data::ReadOptions{config.data.skip_bad_lines},
                             token_cache_dir(config.data))
          .table;
  if (limit > 0 && limit < table.size()) table.keep(spread_indices(table.size(), limit));
  release_free_host_memory();
  return typename Kind::Dataset(std::move(table), tokenizer.pad_id());
}

// How many predictions match the labels.
std::int64_t correct_predictions(const Tensor& logits, const Tensor& labels) {
  const std::int64_t rows = logits.shape()[0], classes = logits.shape()[1];
  const std::vector<float> scores = logits.to(DType::f32).to_vector<float>();
  const std::vector<std::int64_t> truth = labels.to_vector<std::int64_t>();
  std::int64_t correct = 0;
  for (std::int64_t row = 0; row < rows; ++row) {
    const auto first = scores.begin() + row * classes;
    correct += (std::max_element(first, first + classes) - first) == truth[row];
  }
  return correct;
}

template <typename Dataset>
double majority_share(const Dataset& dataset) {
  std::map<std::int64_t, std::int64_t> counts;
  for (std::int64_t i = 0; i < dataset.size(); ++i) ++counts[dataset.label(i)];
  std::int64_t most = 0;
  for (const auto& [label, count] : counts) most = std::max(most, count);
  return dataset.size() == 0 ? 0.0 : double(most) / double(dataset.size());
}

template <typename Kind>
class SupervisedTask final : public Task {
 public:
  using Dataset = typename Kind::Dataset;

  SupervisedTask(const Config& config, std::unique_ptr<data::Tokenizer> tokenizer)
      : config_(config), tokenizer_(std::move(tokenizer)) {
    models::ModelConfig model = resolved_model_config(config, tokenizer_->vocab_size());
    model_ = std::make_unique<typename Kind::Model>(model);
  }

  nn::Module& model() override { return *model_; }

  BatchCounts draw_batch(std::int64_t parts, Shard shard) override {
    Training& training = this->training();
    const std::vector<std::int64_t> drawn = shard.slice(training.sampler.next());
    const auto size = drawn.size() / std::size_t(parts);
    micro_batches_.clear();
    BatchCounts counts{static_cast<std::int64_t>(drawn.size()), 0};
    for (std::int64_t part = 0; part < parts; ++part) {
      micro_batches_.push_back(data::collate(
          training.dataset, std::span(drawn).subspan(std::size_t(part) * size, size)));
      counts.tokens += Kind::tokens(micro_batches_.back());
    }
    return counts;
  }

  Tensor micro_batch_loss(std::int64_t part, double label_smoothing) override {
    const auto& batch = micro_batches_.at(std::size_t(part));
    return ops::cross_entropy(Kind::logits(*model_, batch), batch.labels, -100, label_smoothing);
  }

  // Texts are cut to data.max_length tokens, for training and evaluation alike.
  BatchCounts draw_synthetic_batch(std::int64_t parts, std::int64_t examples, TaskUse) override {
    const std::int64_t length = config_.data.max_length;
    const auto batch = Kind::synthetic(synthetic_ids(examples, length, tokenizer_->vocab_size()),
                                       Tensor::full({examples}, double(length), DType::i64),
                                       Tensor::zeros({examples}, DType::i64));
    micro_batches_.assign(std::size_t(parts), batch);
    return {parts * examples, parts * Kind::tokens(batch)};
  }

  void load_data(EvalSplit split) override {
    training();
    split_dataset(split);
  }

  EvalResult evaluate(EvalSplit split, std::int64_t batch_size, std::int64_t max_batches,
                      Shard shard) override {
    const auto start = std::chrono::steady_clock::now();
    const Dataset& dataset = split_dataset(split);
    EvalResult result;
    result.split = split;
    result.majority_baseline = majority_share(dataset);
    const EvaluationScope evaluation(*model_);
    std::vector<std::int64_t> indices;
    for (std::int64_t first = 0, batch_index = 0;
         first < dataset.size() && (max_batches <= 0 || batch_index < max_batches);
         first += batch_size, ++batch_index) {
      if (batch_index % shard.count != shard.index) continue;
      if (stop_requested()) {
        result.interrupted = true;
        break;
      }
      indices.clear();
      for (std::int64_t i = first; i < std::min(first + batch_size, dataset.size()); ++i) {
        indices.push_back(i);
      }
      const auto batch = data::collate(dataset, indices);
      const Tensor logits = Kind::logits(*model_, batch);
      const auto count = static_cast<std::int64_t>(indices.size());
      result.loss_sum += ops::cross_entropy(logits, batch.labels).item() * double(count);
      result.correct += correct_predictions(logits, batch.labels);
      result.examples += count;
      result.tokens += Kind::tokens(batch);
    }
    // Each batch's tensors are freed as the next one comes; the heap gives
    // back what they left free.
    release_free_host_memory();
    result.seconds = seconds_since(start);
    return result;
  }

  Metric default_metric() const override { return Metric::accuracy; }

 private:
  data::BatchSampler& training_sampler() override { return training().sampler; }
  const data::Tokenizer& tokenizer() const override { return *tokenizer_; }

  // The training split and the order it is drawn in, loaded on first use
  // (evaluating a checkpoint never reads it).
  struct Training {
    Dataset dataset;
    data::BatchSampler sampler;
  };

  Training& training() {
    if (!training_) {
      const std::filesystem::path path = config_.data.train_path();
      Dataset dataset = load<Kind>(config_, *tokenizer_, path, config_.data.max_train_examples);
      data::BatchSampler sampler(dataset.size(), training_sampler_options(config_));
      TKF_CHECK(sampler.batches_per_epoch() > 0, path.string(), ": ", dataset.size(),
                " examples, fewer than train.batch_size ", config_.train.batch_size);
      spdlog::info("{}: {} training examples", path.string(), dataset.size());
      training_ = std::make_unique<Training>(Training{std::move(dataset), std::move(sampler)});
    }
    return *training_;
  }

  const Dataset& split_dataset(EvalSplit split) {
    auto found = splits_.find(split);
    if (found == splits_.end()) {
      found = splits_
                  .emplace(split, load<Kind>(config_, *tokenizer_, config_.data.split_path(split),
                                             config_.data.max_eval_examples))
                  .first;
    }
    return found->second;
  }

  Config config_;
  std::unique_ptr<data::Tokenizer> tokenizer_;
  std::unique_ptr<Training> training_;
  std::unique_ptr<typename Kind::Model> model_;
  std::vector<typename Kind::Batch> micro_batches_;
  std::map<EvalSplit, Dataset> splits_;
};

}  // namespace

std::unique_ptr<Task> make_classification_task(const Config& config,
                                               std::unique_ptr<data::Tokenizer> tokenizer) {
  return std::make_unique<SupervisedTask<ClassificationKind>>(config, std::move(tokenizer));
}

std::unique_ptr<Task> make_retrieval_task(const Config& config,
                                          std::unique_ptr<data::Tokenizer> tokenizer) {
  return std::make_unique<SupervisedTask<RetrievalKind>>(config, std::move(tokenizer));
}

}  // namespace topkformer::train
