// `topkformer bench train`: steady-state training throughput of a config's
// model on synthetic batches (no data files), timed after warm-up steps; the
// last line printed is `N tokens/s`.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "app/bench_report.h"
#include "app/commands.h"
#include "app/config_options.h"
#include "topkformer/autograd/tape.h"
#include "topkformer/core/runtime.h"
#include "topkformer/ops.h"
#include "topkformer/optim/optimizer.h"
#include "topkformer/optim/schedule.h"
#include "topkformer/train/task.h"

namespace topkformer::app {

namespace {

struct TrainBenchOptions {
  ConfigOptions config;
  int steps = 20, warmup = 3;
  std::int64_t vocab_size = 16384;
  std::string csv;
};

// The model a config describes, with the loss of each micro-batch of one
// synthetic batch (drawn once and reused every step, so data loading is not
// part of the figure).
struct Workload {
  std::shared_ptr<nn::Module> model;
  std::vector<std::function<Tensor()>> micro_batch_losses;
  std::int64_t tokens_per_step = 0;  // tokens the model reads per optimizer update
};

Workload make_workload(const train::Config& config, std::int64_t vocab_size) {
  const models::ModelConfig model_config = train::resolved_model_config(config, vocab_size);
  train::check_model_fits(config, model_config, train::TaskUse::training);
  const std::int64_t parts = config.train.accumulation;
  const std::int64_t micro = config.train.batch_size / parts;
  const std::int64_t length = config.data.max_length;
  const double smoothing = config.train.label_smoothing;
  Generator data(config.runtime.seed + 1);
  Workload workload;
  switch (config.data.task) {
    case train::TaskKind::lm: {
      auto model = std::make_shared<models::LanguageModel>(model_config);
      for (std::int64_t part = 0; part < parts; ++part) {
        const Tensor inputs = random_ids({micro, length}, vocab_size, data);
        const Tensor targets = random_ids({micro, length}, vocab_size, data);
        workload.micro_batch_losses.push_back([model, inputs, targets, smoothing] {
          return ops::cross_entropy(model->forward(inputs), targets, -100, smoothing);
        });
      }
      workload.model = model;
      workload.tokens_per_step = config.train.batch_size * length;
      break;
    }
    case train::TaskKind::listops:
    case train::TaskKind::text: {
      auto model = std::make_shared<models::Classifier>(model_config);
      for (std::int64_t part = 0; part < parts; ++part) {
        const Tensor tokens = random_ids({micro, length}, vocab_size, data);
        const Tensor labels = random_ids({micro}, model_config.num_classes, data);
        workload.micro_batch_losses.push_back([model, tokens, labels, smoothing] {
          return ops::cross_entropy(model->forward(tokens, {}), labels, -100, smoothing);
        });
      }
      workload.model = model;
      workload.tokens_per_step = config.train.batch_size * length;
      break;
    }
    case train::TaskKind::retrieval: {
      auto model = std::make_shared<models::DualEncoder>(model_config);
      for (std::int64_t part = 0; part < parts; ++part) {
        const Tensor first = random_ids({micro, length}, vocab_size, data);
        const Tensor second = random_ids({micro, length}, vocab_size, data);
        const Tensor labels = random_ids({micro}, model_config.num_classes, data);
        workload.micro_batch_losses.push_back([model, first, second, labels, smoothing] {
          return ops::cross_entropy(model->forward(first, {}, second, {}), labels, -100, smoothing);
        });
      }
      workload.model = model;
      workload.tokens_per_step = 2 * config.train.batch_size * length;
      break;
    }
    case train::TaskKind::count:
      throw Error("bench train: count is not a task");
  }
  return workload;
}

void run_train_bench(const TrainBenchOptions& options) {
  const train::Config config = options.config.load();
  const Device device = train::prepare_device(config);
  // runtime.threads 0 keeps the tool's --threads (0: all cores).
  if (config.runtime.threads > 0) set_num_threads(int(config.runtime.threads));
  Workload workload = make_workload(config, options.vocab_size);
  nn::Module& model = *workload.model;
  model.to(device);
  model.train(true);
  const std::unique_ptr<optim::Optimizer> optimizer =
      config.optimizer.make(model.named_parameters());
  const std::vector<Tensor> parameters = model.parameters();
  std::int64_t parameter_count = 0;
  for (const Tensor& parameter : parameters) parameter_count += parameter.numel();
  // The dropout stream, as the trainer seeds it from runtime.seed (apart from
  // the initialisation's).
  default_generator().set_state({config.runtime.seed * 0x9E3779B97F4A7C15ull + 1, 0});

  const optim::ScheduleOptions schedule = config.schedule_options();
  const auto parts = std::int64_t(workload.micro_batch_losses.size());
  std::int64_t step = 0;
  double last_loss = 0.0;
  const auto train_step = [&] {
    ++step;
    double loss_sum = 0.0;
    for (const auto& micro_batch_loss : workload.micro_batch_losses) {
      Tensor loss = micro_batch_loss();
      if (parts > 1) loss = ops::scale(loss, 1.0 / double(parts));
      loss_sum += loss.item();
      autograd::backward(loss);
    }
    const double grad_norm = optim::grad_norm(parameters);
    optimizer->step(optim::learning_rate(schedule, step),
                    optim::clip_factor(grad_norm, config.optimizer.clip_norm));
    optimizer->zero_grad();
    last_loss = loss_sum;
  };
  const Measurement measurement =
      measure_workload(config.runtime.device, train_step, options.warmup, options.steps);

  const std::string name = std::filesystem::path(options.config.file).stem().string();
  const auto& t = config.model.transformer;
  BenchReport report({{"config", std::max(11, int(name.size()) + 2)},
                      "task",
                      "layers",
                      "d_model",
                      "heads",
                      "d_ff",
                      "attention",
                      "batch",
                      "length",
                      "vocab",
                      {"parameters", 12},
                      "recompute",
                      "last_loss"});
  char loss_text[32];
  std::snprintf(loss_text, sizeof loss_text, "%.4f", last_loss);
  report.add(
      {name, train::task_name(config.data.task), std::to_string(t.layers),
       std::to_string(t.d_model), std::to_string(t.heads), std::to_string(t.d_ff),
       attention::attention_kind_name(t.attention.kind), std::to_string(config.train.batch_size),
       std::to_string(config.data.max_length), std::to_string(options.vocab_size),
       std::to_string(parameter_count), t.recompute_layers ? "1" : "0", loss_text},
      measurement);
  if (!options.csv.empty()) report.write_csv(options.csv);
  TKF_CHECK(std::isfinite(last_loss), "bench train: the loss is ", last_loss);
  const double tokens_per_second = double(workload.tokens_per_step) *
                                   double(measurement.timing.repeats) / measurement.total_seconds;
  std::printf("%ld tokens per step, %d timed steps after %d warm-up steps, %d threads\n",
              long(workload.tokens_per_step), measurement.timing.repeats, options.warmup,
              num_threads());
  std::printf("%.1f tokens/s\n", tokens_per_second);
  std::fflush(stdout);
}

}  // namespace

void add_bench_train_command(CLI::App& bench) {
  auto options = std::make_shared<TrainBenchOptions>();
  CLI::App* command = bench.add_subcommand(
      "train",
      "Training throughput of a config's model on synthetic batches (no data files); the last "
      "line is 'N tokens/s'");
  add_config_options(command, options->config);
  command->add_option("--steps", options->steps, "Timed training steps")
      ->check(CLI::PositiveNumber);
  command->add_option("--warmup", options->warmup, "Untimed training steps first")
      ->check(CLI::NonNegativeNumber);
  command
      ->add_option("--vocab-size", options->vocab_size,
                   "Vocabulary size of the model and its random tokens (the config's comes "
                   "from its tokenizer, which needs data files)")
      ->check(CLI::PositiveNumber);
  command->add_option("--csv", options->csv, "Also write the row to this CSV file");
  command->callback([options] { run_train_bench(*options); });
}

}  // namespace topkformer::app
