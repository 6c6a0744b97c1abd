// A task is a model together with the data it learns from: it draws training
// batches, computes their loss and evaluates a split. The trainer runs any
// task the same way; make_task builds the one a config names.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "topkformer/autograd/grad_mode.h"
#include "topkformer/data/batcher.h"
#include "topkformer/data/tokenizer.h"
#include "topkformer/nn/module.h"
#include "topkformer/train/config.h"

namespace topkformer::train {

struct EvalResult {
  EvalSplit split = EvalSplit::valid;
  double loss = 0.0;               // mean per example (classifiers) or per predicted token (lm)
  std::optional<double> accuracy;  // classifiers
  std::optional<double>
      majority_baseline;             // classifiers: accuracy of always guessing the commonest label
  std::optional<double> perplexity;  // lm: exp(loss)
  std::int64_t examples = 0;         // evaluated examples (lm: segments)
  std::int64_t tokens = 0;           // tokens read (lm: tokens predicted)
  double seconds = 0.0;
  bool interrupted = false;  // a stop request ended it early: the sums cover part of the split
  // The sums the means come from, which the ranks of a job add up.
  double loss_sum = 0.0;     // over examples (lm: over predicted tokens)
  std::int64_t correct = 0;  // classifiers
  bool per_token = false;    // lm: loss_sum is over tokens

  // Sets loss, accuracy and perplexity from the sums.
  void complete();

  // Throws when this result has no such metric (accuracy of an lm).
  double metric(Metric metric) const;
};

// Whether a larger value of the metric is better (accuracy) or a smaller (loss, perplexity).
inline bool higher_is_better(Metric metric) {
  return metric == Metric::accuracy;
}

// The examples and tokens (real ones, padding excluded) of one training batch.
struct BatchCounts {
  std::int64_t examples = 0;
  std::int64_t tokens = 0;
};

// A rank's share of the data: slice `index` of `count` (the world size).
struct Shard {
  std::int64_t index = 0;
  std::int64_t count = 1;
  // This shard's equal slice of `items` (whose size count must divide).
  std::vector<std::int64_t> slice(std::span<const std::int64_t> items) const;
};

// What a task is built for: training keeps gradients and optimizer state
// besides the weights, evaluation only the weights.
enum class TaskUse { training, evaluation };

class Task {
 public:
  virtual ~Task() = default;
  virtual nn::Module& model() = 0;

  // Draws the train.batch_size examples of the next update, keeps this
  // shard's equal slice of them (every rank draws the same batch) and splits
  // it into `parts` equal micro-batches (train.accumulation).
  virtual BatchCounts draw_batch(std::int64_t parts, Shard shard = {}) = 0;
  // The mean loss over micro-batch `part` of the drawn batch: a differentiable scalar.
  virtual Tensor micro_batch_loss(std::int64_t part, double label_smoothing) = 0;
  // Forward and backward of the drawn batch's `parts` micro-batches, each loss
  // weighted 1/parts (they are equally large), so that the gradients are those
  // of the batch's mean loss, which this returns.
  double accumulate_gradients(std::int64_t parts, double label_smoothing);

  // The memory planner's stand-in for draw_batch (train/memory_plan.h):
  // `parts` micro-batches of `examples` synthetic examples each, of the
  // longest shape the task feeds its model for `use` (data.max_length tokens,
  // retrieval: two texts of it; lm evaluation: eval.segment_length). Token
  // ids and labels are fixed values, since memory does not depend on them.
  virtual BatchCounts draw_synthetic_batch(std::int64_t parts, std::int64_t examples,
                                           TaskUse use) = 0;
  // Reads the training split and `split` (as a run holds them once it has
  // evaluated), so that the planner measures the memory they take.
  virtual void load_data(EvalSplit split) = 0;

  // Where the training data continues (saved in checkpoints). The training
  // split is read when one of these or draw_batch is first called.
  data::BatcherState data_state() { return training_sampler().state(); }
  void set_data_state(data::BatcherState state) { training_sampler().set_state(state); }
  // Epochs done, with the current one as a fraction.
  double epochs();
  // What every rank of a data-parallel job must agree on about the data, as
  // (what, value) pairs: the tokenizer with its vocabulary, and the size of
  // the training split (replicas.cpp compares the ranks'). Reads the split.
  std::vector<std::pair<std::string, std::string>> data_identity();

  // Loss and task metrics over `split` (valid|test) in evaluation mode,
  // without recording gradients; at most max_batches batches when > 0. A
  // shard evaluates batches shard.index, shard.index + shard.count, ...;
  // the result holds the sums (call complete() for the means), so adding up
  // the shards' sums and completing gives the whole split's result.
  virtual EvalResult evaluate(EvalSplit split, std::int64_t batch_size, std::int64_t max_batches,
                              Shard shard = {}) = 0;
  // The metric `train.best_metric: auto` means: accuracy or perplexity.
  virtual Metric default_metric() const = 0;

  // A flag (set by a signal handler) that ends an evaluation after its
  // current batch, marking the result interrupted: a stop request must not
  // wait for a whole split.
  void set_stop_flag(const std::atomic<bool>* stop) { stop_ = stop; }

 protected:
  bool stop_requested() const { return stop_ != nullptr && stop_->load(); }

  // The order of the training split's examples (the split is read on first call).
  virtual data::BatchSampler& training_sampler() = 0;
  virtual const data::Tokenizer& tokenizer() const = 0;

 private:
  const std::atomic<bool>* stop_ = nullptr;
};

// Evaluation mode for as long as it lives: no gradients recorded, dropout
// off; training mode again afterwards.
class EvaluationScope {
 public:
  explicit EvaluationScope(nn::Module& model) : model_(model) { model_.train(false); }
  ~EvaluationScope() { model_.train(true); }
  EvaluationScope(const EvaluationScope&) = delete;
  EvaluationScope& operator=(const EvaluationScope&) = delete;

 private:
  autograd::NoGradGuard no_grad_;
  nn::Module& model_;
};

// The model and data a config describes. The model's weights are initialised
// from runtime.seed on the CPU, then moved to runtime.device (prepare_device).
// A model that cannot fit in memory for `use` is refused before it is built
// (check_model_fits).
std::unique_ptr<Task> make_task(const Config& config, TaskUse use = TaskUse::training);

// Refuses (an Error naming the config file, the estimate and the memory) a
// model whose values cannot fit in the memory of runtime.device: its weights
// and buffers, and for training also a gradient and the optimizer's state per
// parameter (AdamW: 2 values, SGD: 1). Activations and the data come on top,
// so this is a lower bound: it stops sizes such as model.layers = 1e8 at once
// instead of at the kernel's OOM killer. The memory is the machine's physical
// RAM (for cuda, the host holds the weights first, then the GPU everything).
void check_model_fits(const Config& config, const models::ModelConfig& model, TaskUse use);

// Applies the runtime section's device settings: checks that runtime.device
// exists (an error names the config file) and sets the GPU matrix-product
// precision (runtime.precision). Returns the device.
Device prepare_device(const Config& config);

// The model config with what the task and data decide filled in: vocabulary
// size, classes, seed and (when model.max_length is 0) the longest sequence
// it must read.
models::ModelConfig resolved_model_config(const Config& config, std::int64_t vocab_size);

}  // namespace topkformer::train
