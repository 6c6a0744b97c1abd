#include "topkformer/train/task.h"

#include <algorithm>
#include <cmath>

#include "language_model_task.h"
#include "supervised_task.h"
#include "task_data.h"
#include "topkformer/core/error.h"
#include "topkformer/core/runtime.h"

namespace topkformer::train {

double EvalResult::metric(const std::string& name) const {
  const std::optional<double> value = name == "loss"         ? std::optional<double>(loss)
                                      : name == "accuracy"   ? accuracy
                                      : name == "perplexity" ? perplexity
                                                             : std::nullopt;
  TKF_CHECK(value.has_value(), "evaluation of the ", split, " split has no metric '", name, "'");
  return *value;
}

void EvalResult::complete() {
  TKF_CHECK(examples > 0, "evaluate: the ", split, " split has no examples");
  loss = loss_sum / double(per_token ? tokens : examples);
  if (per_token) {
    perplexity = std::exp(loss);
  } else {
    accuracy = double(correct) / double(examples);
  }
}

std::vector<std::int64_t> Shard::slice(std::span<const std::int64_t> items) const {
  TKF_CHECK(std::int64_t(items.size()) % count == 0, "a batch of ", items.size(),
            " examples does not split into ", count, " equal shards");
  const std::size_t size = items.size() / std::size_t(count);
  const auto first = items.begin() + std::ptrdiff_t(std::size_t(index) * size);
  return {first, first + std::ptrdiff_t(size)};
}

double Task::epochs() {
  const data::BatchSampler& sampler = training_sampler();
  const data::BatcherState state = sampler.state();
  return double(state.epoch) + double(state.position) / double(sampler.dataset_size());
}

std::vector<std::pair<std::string, std::string>> Task::data_identity() {
  const data::Tokenizer& tokens = tokenizer();
  return {{"tokenizer", tokens.fingerprint()},
          {"vocabulary size", std::to_string(tokens.vocab_size())},
          {"training examples (lm: blocks)", std::to_string(training_sampler().dataset_size())}};
}

bool higher_is_better(const std::string& metric) {
  return metric == "accuracy";
}

models::ModelConfig resolved_model_config(const Config& config, std::int64_t vocab_size) {
  models::ModelConfig model = config.model;
  model.vocab_size = vocab_size;
  model.seed = config.runtime.seed;
  // ListOps values are the digits 0-9; the text and retrieval labels are 0 or 1
  // (the readers check them).
  model.num_classes = config.data.task == TaskKind::listops ? 10 : 2;
  if (model.max_length == 0) {
    model.max_length = config.data.max_length;
    // The language model reads evaluation segments too, which may be longer.
    if (config.data.task == TaskKind::lm) {
      model.max_length = std::max(model.max_length, config.eval.segment_length);
    }
  }
  return model;
}

Device prepare_device(const Config& config) {
  const Device device = Device::parse(config.runtime.device);
  try {
    check_device(device);
  } catch (const Error& error) {
    throw Error(config.source + ": runtime.device: " + error.what());
  }
  set_matmul_precision(parse_matmul_precision(config.runtime.precision));
  return device;
}

namespace {
std::unique_ptr<Task> make_task_on_cpu(const Config& config) {
  std::unique_ptr<data::Tokenizer> tokenizer = make_tokenizer(config.data);
  switch (config.data.task) {
    case TaskKind::listops:
    case TaskKind::text:
      return make_classification_task(config, std::move(tokenizer));
    case TaskKind::retrieval:
      return make_retrieval_task(config, std::move(tokenizer));
    case TaskKind::lm:
      return make_language_model_task(config, std::move(tokenizer));
  }
  throw Error("make_task: unknown task kind");
}
}  // namespace

std::unique_ptr<Task> make_task(const Config& config) {
  const Device device = prepare_device(config);
  // The model is initialised on the CPU (the same weights for every device
  // and seed), then moved.
  std::unique_ptr<Task> task = make_task_on_cpu(config);
  task->model().to(device);
  return task;
}

}  // namespace topkformer::train
