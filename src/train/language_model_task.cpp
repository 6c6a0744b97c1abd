#include "language_model_task.h"

#include <chrono>
#include <cmath>
#include <map>
#include <span>

#include <spdlog/spdlog.h>

#include "task_data.h"
#include "topkformer/core/error.h"
#include "topkformer/core/runtime.h"
#include "topkformer/data/lm_corpus.h"
#include "topkformer/ops.h"

namespace topkformer::train {
namespace {

// inputs and targets [examples, length] (i64) of equally long examples.
struct LmBatch {
  Tensor inputs, targets;
};

LmBatch collate(std::span<const data::LmExample> examples) {
  const auto rows = static_cast<std::int64_t>(examples.size());
  const auto length = static_cast<std::int64_t>(examples.front().inputs.size());
  std::vector<std::int64_t> inputs, targets;
  inputs.reserve(std::size_t(rows * length));
  targets.reserve(std::size_t(rows * length));
  for (const data::LmExample& example : examples) {
    inputs.insert(inputs.end(), example.inputs.begin(), example.inputs.end());
    targets.insert(targets.end(), example.targets.begin(), example.targets.end());
  }
  return {Tensor::from_vector<std::int64_t>({rows, length}, inputs),
          Tensor::from_vector<std::int64_t>({rows, length}, targets)};
}

class LanguageModelTask final : public Task {
 public:
  LanguageModelTask(const Config& config, std::unique_ptr<data::Tokenizer> tokenizer)
      : config_(config), tokenizer_(std::move(tokenizer)) {
    model_ = std::make_unique<models::LanguageModel>(
        resolved_model_config(config, tokenizer_->vocab_size()));
  }

  nn::Module& model() override { return *model_; }

  BatchCounts draw_batch(std::int64_t parts, Shard shard) override {
    Training& training = this->training();
    const std::vector<std::int64_t> drawn = shard.slice(training.sampler.next());
    const auto size = drawn.size() / std::size_t(parts);
    micro_batches_.clear();
    for (std::int64_t part = 0; part < parts; ++part) {
      std::vector<data::LmExample> examples;
      for (std::size_t i = std::size_t(part) * size; i < std::size_t(part + 1) * size; ++i) {
        examples.push_back(training.blocks.block(drawn[i]));
      }
      micro_batches_.push_back(collate(examples));
    }
    const auto examples = static_cast<std::int64_t>(drawn.size());
    return {examples, examples * training.blocks.seq_len()};
  }

  Tensor micro_batch_loss(std::int64_t part, double label_smoothing) override {
    const LmBatch& batch = micro_batches_.at(std::size_t(part));
    return ops::cross_entropy(model_->forward(batch.inputs), batch.targets, -100, label_smoothing);
  }

  // Training blocks of data.max_length tokens, evaluation segments of eval.segment_length.
  BatchCounts draw_synthetic_batch(std::int64_t parts, std::int64_t examples,
                                   TaskUse use) override {
    const std::int64_t length =
        use == TaskUse::training ? config_.data.max_length : config_.eval.segment_length;
    const Tensor ids = synthetic_ids(examples, length, tokenizer_->vocab_size());
    micro_batches_.assign(std::size_t(parts), LmBatch{ids, ids});
    return {parts * examples, parts * examples * length};
  }

  void load_data(EvalSplit split) override {
    training();
    split_cache(split);
  }

  // Perplexity as the paper measures it: the split cut into non-overlapping
  // segments of eval.segment_length, each read from its start, every token
  // after the first predicted once.
  EvalResult evaluate(EvalSplit split, std::int64_t batch_size, std::int64_t max_batches,
                      Shard shard) override {
    const auto start = std::chrono::steady_clock::now();
    std::vector<data::LmExample> segments =
        data::lm_eval_segments(split_cache(split).ids(), config_.eval.segment_length);
    if (config_.data.max_eval_examples > 0 &&
        std::int64_t(segments.size()) > config_.data.max_eval_examples) {
      segments.resize(std::size_t(config_.data.max_eval_examples));
    }
    EvalResult result;
    result.split = split;
    result.per_token = true;
    const EvaluationScope evaluation(*model_);
    std::size_t first = 0;
    for (std::int64_t batch_index = 0;
         first < segments.size() && (max_batches <= 0 || batch_index < max_batches);
         ++batch_index) {
      // Only the last segment may be shorter: it goes in a batch of its own.
      std::size_t end = std::min(segments.size(), first + std::size_t(batch_size));
      while (segments[end - 1].inputs.size() != segments[first].inputs.size()) --end;
      if (stop_requested()) {
        result.interrupted = true;
        break;
      }
      if (batch_index % shard.count == shard.index) {
        const LmBatch batch = collate(std::span(segments).subspan(first, end - first));
        const Tensor logits = model_->forward(batch.inputs);
        result.loss_sum +=
            ops::cross_entropy(logits, batch.targets).item() * double(batch.targets.numel());
        result.examples += std::int64_t(end - first);
        result.tokens += batch.targets.numel();
      }
      first = end;
    }
    // Each batch's tensors are freed as the next one comes; the heap gives
    // back what they left free.
    release_free_host_memory();
    result.seconds = seconds_since(start);
    return result;
  }

  Metric default_metric() const override { return Metric::perplexity; }

 private:
  data::BatchSampler& training_sampler() override { return training().sampler; }
  const data::Tokenizer& tokenizer() const override { return *tokenizer_; }

  // The training tokens, their blocks and the order they are drawn in,
  // loaded on first use (evaluating a checkpoint never reads them).
  struct Training {
    data::TokenCache cache;
    data::LmBlocks blocks;
    data::BatchSampler sampler;
  };

  Training& training() {
    if (!training_) {
      data::TokenCache cache = open_cache(config_.data.train_path());
      const data::LmBlocks blocks(limited(cache.ids()), config_.data.max_length);
      data::BatchSampler sampler(blocks.size(), training_sampler_options(config_));
      TKF_CHECK(sampler.batches_per_epoch() > 0, config_.data.train_path().string(), ": ",
                blocks.size(), " blocks of data.max_length ", config_.data.max_length,
                " tokens, fewer than train.batch_size ", config_.train.batch_size);
      spdlog::info("{}: {} tokens, {} training blocks of {}", config_.data.train_path().string(),
                   cache.size(), blocks.size(), config_.data.max_length);
      // The blocks view the cache's mapping, which moves with the cache.
      training_ =
          std::make_unique<Training>(Training{std::move(cache), blocks, std::move(sampler)});
    }
    return *training_;
  }

  data::TokenCache open_cache(const std::filesystem::path& path) const {
    return data::TokenCache(path, *tokenizer_, end_of_line_id(*tokenizer_),
                            token_cache_dir(config_.data));
  }

  // data.max_train_examples counts blocks: the tokens of that many.
  std::span<const std::uint32_t> limited(std::span<const std::uint32_t> ids) const {
    const std::int64_t limit = config_.data.max_train_examples;
    const auto wanted = std::size_t(limit * config_.data.max_length + 1);
    if (limit > 0 && wanted < ids.size()) ids = ids.first(wanted);
    return ids;
  }

  const data::TokenCache& split_cache(EvalSplit split) {
    auto found = splits_.find(split);
    if (found == splits_.end()) {
      found = splits_.emplace(split, open_cache(config_.data.split_path(split))).first;
    }
    return found->second;
  }

  Config config_;
  std::unique_ptr<data::Tokenizer> tokenizer_;
  std::unique_ptr<Training> training_;
  std::unique_ptr<models::LanguageModel> model_;
  std::vector<LmBatch> micro_batches_;
  std::map<EvalSplit, data::TokenCache> splits_;
};

}  // namespace

std::unique_ptr<Task> make_language_model_task(const Config& config,
                                               std::unique_ptr<data::Tokenizer> tokenizer) {
  return std::make_unique<LanguageModelTask>(config, std::move(tokenizer));
}

}  // namespace topkformer::train
