#include "topkformer/train/trainer.h"

#include <chrono>
#include <cmath>
#include <fstream>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "replicas.h"
#include "run_log.h"
#include "topkformer/autograd/tape.h"
#include "topkformer/core/allocator.h"
#include "topkformer/core/error.h"
#include "topkformer/core/runtime.h"
#include "topkformer/dist/gradient_reducer.h"
#include "topkformer/ops/elementwise.h"
#include "topkformer/train/checkpoint.h"
#include "topkformer/train/safetensors.h"

namespace topkformer::train {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::unique_ptr<optim::Optimizer> make_optimizer(const OptimizerConfig& config,
                                                 nn::NamedTensors parameters) {
  if (config.kind == OptimizerKind::sgd) {
    return std::make_unique<optim::Sgd>(std::move(parameters), config.sgd());
  }
  return std::make_unique<optim::AdamW>(std::move(parameters), config.adamw());
}

nn::NamedTensors model_tensors(const nn::Module& model) {
  nn::NamedTensors tensors = model.named_parameters();
  for (auto& buffer : model.named_buffers()) tensors.push_back(std::move(buffer));
  return tensors;
}

// The dropout stream: seeded from runtime.seed but apart from the stream that
// initialises the weights (which uses the seed itself).
PhiloxState initial_dropout_state(std::uint64_t seed) {
  return {seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull, 0};
}

// Rank r draws its dropout masks from a stream of its own, at the same offset
// as rank 0's (every rank draws as many words per step): checkpoints hold rank
// 0's state, and any number of ranks resumes from it.
PhiloxState rank_stream(PhiloxState rank0, int rank) {
  return {rank0.seed + std::uint64_t(rank) * 0xD1B54A32D192ED03ull, rank0.offset};
}

nlohmann::json eval_json(const EvalResult& result, std::int64_t step) {
  nlohmann::json line = {{"type", "eval"},
                         {"step", step},
                         {"split", result.split},
                         {"loss", result.loss},
                         {"examples", result.examples},
                         {"tokens", result.tokens},
                         {"seconds", result.seconds}};
  if (result.accuracy) line["accuracy"] = *result.accuracy;
  if (result.majority_baseline) line["majority_baseline"] = *result.majority_baseline;
  if (result.perplexity) line["perplexity"] = *result.perplexity;
  return line;
}

std::string describe(const EvalResult& result) {
  std::string text = fmt::format("{} loss {:.4f}", result.split, result.loss);
  if (result.accuracy) {
    text += fmt::format(" | accuracy {:.4f} (majority-class baseline {:.4f})", *result.accuracy,
                        result.majority_baseline.value_or(0.0));
  }
  if (result.perplexity) text += fmt::format(" | perplexity {:.2f}", *result.perplexity);
  return text + fmt::format(" | {} examples in {:.1f} s", result.examples, result.seconds);
}

// Sums over the steps between two log lines.
struct Interval {
  std::int64_t steps = 0, examples = 0, tokens = 0;
  double loss = 0.0, grad_norm = 0.0;
  Clock::time_point start = Clock::now();
};

// One run of the loop: the task, the optimizer, the state a checkpoint holds.
class Trainer {
 public:
  Trainer(const Config& config, const TrainOptions& options)
      : config_(config),
        options_(options),
        communicator_(options.communicator != nullptr
                          ? *options.communicator
                          : *(own_communicator_ = dist::make_single_communicator())),
        shard_{communicator_.rank(), communicator_.world_size()},
        checkpoints_dir_(options.run_dir / "checkpoints"),
        config_yaml_(to_yaml(config)),
        log_(options.run_dir, options.log_to_console, communicator_.rank()) {
    TKF_CHECK(config.train.batch_size % (shard_.count * config.train.accumulation) == 0,
              config.source, ": train.batch_size: ", config.train.batch_size,
              " examples do not split into ", shard_.count, " ranks x ", config.train.accumulation,
              " micro-batches (train.accumulation) of equal size");
    set_num_threads(int(config.runtime.threads));
    spdlog::info("topkformer {} | run {} | {} rank(s) ({}) | {} threads per rank", version(),
                 options.run_dir.string(), shard_.count,
                 dist::backend_name(communicator_.backend()), num_threads());
    task_ = make_task(config);
    model_ = &task_->model();
    model_->train(true);
    optimizer_ = make_optimizer(config.optimizer, model_->named_parameters());
    reducer_ = std::make_unique<dist::GradientReducer>(communicator_, model_->parameters());
    metric_ =
        config.train.best_metric == "auto" ? task_->default_metric() : config.train.best_metric;
    std::int64_t parameter_count = 0;
    for (const Tensor& parameter : model_->parameters()) parameter_count += parameter.numel();
    spdlog::info("model: {} parameters; attention {}, feed-forward {}", parameter_count,
                 attention::attention_kind_name(config.model.transformer.attention.kind),
                 nn::feed_forward_kind_name(config.model.transformer.feed_forward.kind));
    state_.rng = initial_dropout_state(config.runtime.seed);
    state_.config_hash = config_hash(config);
    if (communicator_.rank() == 0) resume();
    // Rank 0's weights, optimizer state and position, whether initialised or loaded.
    broadcast_tensors(communicator_, model_tensors(*model_));
    broadcast_tensors(communicator_, optimizer_tensors());
    broadcast_state(communicator_, state_);
    optimizer_->set_steps(optimizer_steps_.to_vector<std::int64_t>()[0]);
    task_->set_data_state(state_.data);
    default_generator().set_state(rank_stream(state_.rng, communicator_.rank()));
  }

  TrainSummary run() {
    TrainSummary summary;
    summary.first_step = state_.step + 1;
    const std::int64_t steps = config_.train.steps;
    const double elapsed_before = state_.elapsed_seconds;
    const Clock::time_point session_start = Clock::now();
    Interval interval;
    std::int64_t bad_in_row = 0, saved_step = -1;
    allocator_for(Device::cpu()).reset_peak();

    while (state_.step < steps) {
      // Every rank must stop at the same step, whichever received the signal.
      if (on_any_rank(communicator_,
                      options_.stop_requested != nullptr && options_.stop_requested->load())) {
        spdlog::warn("stop requested: saving step {} and exiting", state_.step);
        summary.interrupted = true;
        break;
      }
      const std::int64_t step = ++state_.step;
      const double learning_rate = optim::learning_rate(config_.schedule_options(), step);
      const auto [loss, grad_norm, counts] = forward_backward();
      summary.losses.push_back(loss);
      if (!std::isfinite(loss) || !std::isfinite(grad_norm)) {
        optimizer_->zero_grad();
        ++bad_in_row;
        spdlog::warn("step {}: loss {} and gradient norm {}: skipping the update ({} in a row)",
                     step, loss, grad_norm, bad_in_row);
        TKF_CHECK(bad_in_row <= config_.train.max_bad_steps, "step ", step, ": ", bad_in_row,
                  " steps in a row had a NaN or Inf loss or gradient norm (train.max_bad_steps ",
                  config_.train.max_bad_steps,
                  "); stopping. The last checkpoint is intact: "
                  "lower optimizer.learning_rate or set optimizer.clip_norm and resume");
      } else {
        bad_in_row = 0;
        optimizer_->step(learning_rate);
        optimizer_->zero_grad();
        interval.loss += loss;
        interval.grad_norm += grad_norm;
        ++interval.steps;
      }
      interval.examples += counts.examples;
      interval.tokens += counts.tokens;
      state_.data = task_->data_state();
      state_.elapsed_seconds = elapsed_before + seconds_since(session_start);

      if (step % config_.train.log_every == 0 || step == steps) {
        log_interval(interval, learning_rate, session_start, summary.first_step);
        interval = Interval{};
      }
      bool improved = false;
      if ((config_.train.eval_every > 0 && step % config_.train.eval_every == 0) || step == steps) {
        improved = evaluate(summary);
        if (config_.train.early_stopping > 0 &&
            state_.evals_without_improvement >= config_.train.early_stopping) {
          spdlog::info("early stopping: {} evaluations without a better {}",
                       state_.evals_without_improvement, metric_);
          summary.stopped_early = true;
        }
      }
      if (improved || step == steps || summary.stopped_early ||
          (config_.train.save_every > 0 && step % config_.train.save_every == 0)) {
        summary.last_checkpoint = save(improved);
        saved_step = step;
      }
      if (summary.stopped_early) break;
    }
    if (state_.step != saved_step && state_.step > 0) summary.last_checkpoint = save(false);
    summary.last_step = state_.step;
    summary.metric = metric_;
    summary.best_metric = state_.best_metric;
    return summary;
  }

 private:
  struct StepResult {
    double loss, grad_norm;
    BatchCounts counts;
  };

  // Gradients of the mean loss over the global batch: each rank's shard is
  // split into micro-batches (each loss weighted 1/parts: they are equally
  // large), the ranks' gradients are averaged, then clipped by their norm
  // (the same on every rank once averaged).
  StepResult forward_backward() {
    const std::int64_t parts = config_.train.accumulation;
    const BatchCounts counts = task_->draw_batch(parts, shard_);
    double loss = 0.0;
    for (std::int64_t part = 0; part < parts; ++part) {
      Tensor micro_loss = task_->micro_batch_loss(part, config_.train.label_smoothing);
      if (parts > 1) micro_loss = ops::scale(micro_loss, 1.0 / double(parts));
      loss += micro_loss.item();
      autograd::backward(micro_loss);
    }
    reducer_->average();
    const std::vector<double> totals =
        sum_over_ranks(communicator_, {loss, double(counts.examples), double(counts.tokens)});
    const double grad_norm =
        optim::clip_grad_norm(model_->parameters(), config_.optimizer.clip_norm);
    return {totals[0] / double(shard_.count),
            grad_norm,
            {std::int64_t(totals[1]), std::int64_t(totals[2])}};
  }

  void log_interval(const Interval& interval, double learning_rate, Clock::time_point session_start,
                    std::int64_t first_step) {
    const double seconds = std::max(seconds_since(interval.start), 1e-9);
    const double session_seconds = seconds_since(session_start);
    const auto done = double(state_.step - first_step + 1);
    const double eta = session_seconds / done * double(config_.train.steps - state_.step);
    const double loss = interval.steps > 0 ? interval.loss / double(interval.steps) : NAN;
    const double grad_norm = interval.steps > 0 ? interval.grad_norm / double(interval.steps) : NAN;
    Allocator& allocator = allocator_for(Device::cpu());
    const std::int64_t peak = allocator.peak_bytes();
    allocator.reset_peak();
    spdlog::info(
        "step {}/{} | epoch {:.2f} | loss {:.4f} | lr {:.3e} | grad norm {:.3f} | {:.1f} ex/s "
        "{:.0f} tok/s | peak {:.1f} MiB | elapsed {} | eta {}",
        state_.step, config_.train.steps, task_->epochs(), loss, learning_rate, grad_norm,
        double(interval.examples) / seconds, double(interval.tokens) / seconds,
        double(peak) / (1 << 20), format_duration(state_.elapsed_seconds), format_duration(eta));
    log_.metrics({{"type", "train"},
                  {"step", state_.step},
                  {"epoch", task_->epochs()},
                  {"loss", loss},
                  {"learning_rate", learning_rate},
                  {"grad_norm", grad_norm},
                  {"examples_per_second", double(interval.examples) / seconds},
                  {"tokens_per_second", double(interval.tokens) / seconds},
                  {"peak_bytes", peak},
                  {"elapsed_seconds", state_.elapsed_seconds},
                  {"eta_seconds", eta}});
  }

  // Evaluates eval.split and returns whether it is the best so far. The
  // dropout stream is put back afterwards, so evaluating never changes training.
  bool evaluate(TrainSummary& summary) {
    const PhiloxState rng = default_generator().state();
    EvalResult result = task_->evaluate(config_.eval.split, config_.eval.batch_size,
                                        config_.eval.max_batches, shard_);
    default_generator().set_state(rng);
    combine_shards(communicator_, result);
    spdlog::info("eval at step {}: {}", state_.step, describe(result));
    log_.metrics(eval_json(result, state_.step));
    summary.last_eval = result;
    const double value = result.metric(metric_);
    const bool improved =
        !state_.best_metric.has_value() ||
        (higher_is_better(metric_) ? value > *state_.best_metric : value < *state_.best_metric);
    if (improved) {
      state_.best_metric = value;
      state_.best_step = state_.step;
      state_.evals_without_improvement = 0;
    } else {
      ++state_.evals_without_improvement;
    }
    return improved;
  }

  // Rank 0 writes; the others wait, so that no rank runs ahead of a save.
  std::filesystem::path save(bool best) {
    const std::filesystem::path path = checkpoints_dir_ / checkpoint_name(state_.step);
    if (communicator_.rank() == 0) {
      state_.rng = {state_.rng.seed, default_generator().state().offset};
      state_.version = version();
      optimizer_steps_.fill_(double(optimizer_->steps()));
      write_checkpoint(checkpoints_dir_,
                       {model_tensors(*model_), optimizer_tensors(), state_, config_yaml_});
      if (best) mark_best_checkpoint(checkpoints_dir_, state_.step);
      prune_checkpoints(checkpoints_dir_, config_.train.keep_last, state_.best_step);
      spdlog::info("saved {}", path.string());
    }
    communicator_.barrier();
    return path;
  }

  // The optimizer's state and its step count, as checkpoints hold them.
  nn::NamedTensors optimizer_tensors() const {
    nn::NamedTensors tensors = optimizer_->state();
    tensors.emplace_back("steps", optimizer_steps_);
    return tensors;
  }

  // Rank 0 finds and loads the checkpoint; the constructor broadcasts it.
  void resume() {
    std::optional<std::filesystem::path> checkpoint;
    if (options_.resume == "auto") {
      checkpoint = latest_checkpoint(checkpoints_dir_);
      if (!checkpoint) spdlog::info("no checkpoint in {}: starting", checkpoints_dir_.string());
    } else if (!options_.resume.empty()) {
      checkpoint = options_.resume;
    } else {
      TKF_CHECK(!latest_checkpoint(checkpoints_dir_).has_value(), options_.run_dir.string(),
                " already holds checkpoints: continue it with --resume auto, or choose "
                "another --run-dir");
    }
    if (!checkpoint) return;
    const std::string hash = state_.config_hash;
    state_ = load_checkpoint(*checkpoint, model_tensors(*model_), optimizer_tensors());
    if (state_.config_hash != hash) {
      spdlog::warn(
          "{} was written with another config (hash {}, now {}): resuming with the current one",
          checkpoint->string(), state_.config_hash, hash);
      state_.config_hash = hash;
    }
    log_.metrics({{"type", "resume"}, {"step", state_.step}, {"checkpoint", checkpoint->string()}});
    spdlog::info("resumed from {} at step {}", checkpoint->string(), state_.step);
  }

  Config config_;
  TrainOptions options_;
  std::unique_ptr<dist::Communicator> own_communicator_;  // when the options give none
  dist::Communicator& communicator_;
  Shard shard_;
  std::filesystem::path checkpoints_dir_;
  std::string config_yaml_;
  RunLog log_;
  std::unique_ptr<Task> task_;
  nn::Module* model_ = nullptr;
  std::unique_ptr<optim::Optimizer> optimizer_;
  Tensor optimizer_steps_ = Tensor::zeros({}, DType::i64);
  std::unique_ptr<dist::GradientReducer> reducer_;
  std::string metric_;
  TrainingState state_;
};

// Writes `text` to `path` through a temporary file renamed into place.
void write_file_atomically(const std::filesystem::path& path, const std::string& text) {
  const std::filesystem::path temporary = path.string() + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << text;
    TKF_CHECK(out.good(), temporary.string(), ": cannot write");
  }
  std::filesystem::rename(temporary, path);
}

}  // namespace

TrainSummary run_training(const Config& config, const TrainOptions& options) {
  const bool writes = options.communicator == nullptr || options.communicator->rank() == 0;
  if (writes) {
    std::filesystem::create_directories(options.run_dir);
    write_file_atomically(options.run_dir / "config.yaml", to_yaml(config));
  }
  Trainer trainer(config, options);
  return trainer.run();
}

EvalResult evaluate_checkpoint(const Config& config, const std::filesystem::path& checkpoint,
                               const std::string& split) {
  set_num_threads(int(config.runtime.threads));
  const std::unique_ptr<Task> task = make_task(config, TaskUse::evaluation);
  const std::filesystem::path model_file = checkpoint / "model.safetensors";
  const SafetensorsFile file = read_safetensors(model_file);
  // Every parameter must come from the checkpoint; buffers only where it has
  // them (Performer's random features when the model is evaluated with
  // Performer attention but was trained without it are drawn afresh).
  nn::NamedTensors targets = task->model().named_parameters();
  for (auto& [name, buffer] : task->model().named_buffers()) {
    for (const auto& stored : file.tensors) {
      if (stored.first == name) targets.emplace_back(name, buffer);
    }
  }
  copy_into(file, model_file, targets, /*allow_unused=*/true);
  EvalResult result = task->evaluate(split, config.eval.batch_size, 0);
  result.complete();
  return result;
}

std::string to_json_line(const EvalResult& result, std::int64_t step) {
  return eval_json(result, step).dump();
}

}  // namespace topkformer::train
