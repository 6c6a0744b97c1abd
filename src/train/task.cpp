#include "topkformer/train/task.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "language_model_task.h"
#include "supervised_task.h"
#include "task_data.h"
#include "topkformer/autograd/tape.h"
#include "topkformer/core/error.h"
#include "topkformer/core/runtime.h"
#include "topkformer/ops.h"

namespace topkformer::train {

double EvalResult::metric(Metric metric) const {
  const std::optional<double> value = metric == Metric::loss       ? std::optional<double>(loss)
                                      : metric == Metric::accuracy ? accuracy
                                                                   : perplexity;
  TKF_CHECK(value.has_value(), "evaluation of the ", eval_split_name(split),
            " split has no metric '", metric_name(metric), "'");
  return *value;
}

void EvalResult::complete() {
  TKF_CHECK(examples > 0, "evaluate: the ", eval_split_name(split), " split has no examples");
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

double Task::accumulate_gradients(std::int64_t parts, double label_smoothing) {
  double loss = 0.0;
  for (std::int64_t part = 0; part < parts; ++part) {
    Tensor micro_loss = micro_batch_loss(part, label_smoothing);
    if (parts > 1) micro_loss = ops::scale(micro_loss, 1.0 / double(parts));
    loss += micro_loss.item();
    autograd::backward(micro_loss);
  }
  return loss;
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
  set_matmul_precision(config.runtime.precision);
  return device;
}

namespace {

models::ModelKind model_kind(TaskKind task) {
  switch (task) {
    case TaskKind::listops:
    case TaskKind::text:
      return models::ModelKind::classifier;
    case TaskKind::retrieval:
      return models::ModelKind::dual_encoder;
    case TaskKind::lm:
      return models::ModelKind::language_model;
    case TaskKind::count:
      break;
  }
  throw Error("model_kind: unknown task kind");
}

// "7.81e+13 bytes (71.0 TiB)": the estimate may pass what an int64 holds.
std::string bytes_text(double bytes) {
  static const char* const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = bytes / 1024.0;
  int unit = 0;
  while (value >= 1024.0 && unit < 5) {
    value /= 1024.0;
    ++unit;
  }
  char text[64];
  std::snprintf(text, sizeof text, "%.3g bytes (%.1f %s)", bytes, value, units[unit]);
  return text;
}

std::unique_ptr<Task> make_task_on_cpu(const Config& config, TaskUse use) {
  std::unique_ptr<data::Tokenizer> tokenizer = make_tokenizer(config.data);
  check_model_fits(config, resolved_model_config(config, tokenizer->vocab_size()), use);
  switch (config.data.task) {
    case TaskKind::listops:
    case TaskKind::text:
      return make_classification_task(config, std::move(tokenizer));
    case TaskKind::retrieval:
      return make_retrieval_task(config, std::move(tokenizer));
    case TaskKind::lm:
      return make_language_model_task(config, std::move(tokenizer));
    case TaskKind::count:
      break;
  }
  throw Error("make_task: unknown task kind");
}
}  // namespace

void check_model_fits(const Config& config, const models::ModelConfig& model, TaskUse use) {
  const models::ModelValues values = models::count_values(model, model_kind(config.data.task));
  const double value_bytes = double(dtype_size(model.dtype));
  const double weights = (values.parameters + values.buffers) * value_bytes;
  const bool adamw = config.optimizer.kind == OptimizerKind::adamw;
  const double per_parameter = use == TaskUse::training ? (adamw ? 3.0 : 2.0) : 0.0;
  const double needed = weights + per_parameter * values.parameters * value_bytes;
  const std::string what = use == TaskUse::training
                               ? std::string("weights, gradients and ") +
                                     (adamw ? "AdamW's 2 moments" : "SGD's momentum") + " to train"
                               : std::string("weights to evaluate");
  const auto refuse_above = [&](double bytes, Device device, const std::string& held) {
    const std::int64_t memory = device_memory_bytes(device);
    if (memory < 0 || bytes <= double(memory)) return;
    char parameters[32];
    std::snprintf(parameters, sizeof parameters, "%.3g", values.parameters);
    throw Error(config.source + ": model: " + parameters + " parameters (model.layers " +
                std::to_string(model.transformer.layers) + ", d_model " +
                std::to_string(model.transformer.d_model) + ", d_ff " +
                std::to_string(model.transformer.d_ff) + ", vocabulary " +
                std::to_string(model.vocab_size) + ", max_length " +
                std::to_string(model.max_length) + ") need at least " + bytes_text(bytes) +
                " for their " + held + ", more than the " + bytes_text(double(memory)) +
                " of memory of " + (device.is_cpu() ? "this machine" : device.str()));
  };
  const Device device = Device::parse(config.runtime.device);
  // The model is built on the CPU and then moved: the host holds the weights first.
  if (device.is_cuda()) refuse_above(weights, Device::cpu(), "weights");
  refuse_above(needed, device, what);
}

std::unique_ptr<Task> make_task(const Config& config, TaskUse use) {
  const Device device = prepare_device(config);
  // The model is initialised on the CPU (the same weights for every device
  // and seed), then moved.
  std::unique_ptr<Task> task = make_task_on_cpu(config, use);
  task->model().to(device);
  return task;
}

}  // namespace topkformer::train
