#include "topkformer/train/trainer.h"

#include <chrono>
#include <cmath>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "replicas.h"
#include "run_log.h"
#include "topkformer/core/allocator.h"
#include "topkformer/core/device_timer.h"
#include "topkformer/core/error.h"
#include "topkformer/core/runtime.h"
#include "topkformer/dist/gradient_reducer.h"
#include "topkformer/train/checkpoint.h"
#include "topkformer/train/memory_plan.h"
#include "topkformer/train/safetensors.h"

namespace topkformer::train {
namespace {

using Clock = std::chrono::steady_clock;

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
                         {"split", eval_split_name(result.split)},
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
  std::string text = fmt::format("{} loss {:.4f}", eval_split_name(result.split), result.loss);
  if (result.accuracy) {
    text += fmt::format(" | accuracy {:.4f} (majority-class baseline {:.4f})", *result.accuracy,
                        result.majority_baseline.value_or(0.0));
  }
  if (result.perplexity) text += fmt::format(" | perplexity {:.2f}", *result.perplexity);
  return text + fmt::format(" | {} examples in {:.1f} s", result.examples, result.seconds);
}

// Sums over the steps between two log lines; `skipped` steps had a NaN or
// Inf loss and are not in the loss average.
struct Interval {
  std::int64_t steps = 0, skipped = 0, examples = 0, tokens = 0;
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
    task_->set_stop_flag(options.stop_requested);
    model_ = &task_->model();
    model_->train(true);
    optimizer_ = config.optimizer.make(model_->named_parameters());
    reducer_ = std::make_unique<dist::GradientReducer>(communicator_, model_->parameters());
    metric_ = config.train.best_metric.value_or(task_->default_metric());
    std::int64_t parameter_count = 0;
    for (const Tensor& parameter : model_->parameters()) parameter_count += parameter.numel();
    spdlog::info("model: {} parameters; attention {}, feed-forward {}", parameter_count,
                 attention::attention_kind_name(config.model.transformer.attention.kind),
                 nn::feed_forward_kind_name(config.model.transformer.feed_forward.kind));
    state_.rng = initial_dropout_state(config.runtime.seed);
    state_.config_hash = config_hash(config);
    check_replicas_agree(communicator_, config, *task_, model_tensors(*model_),
                         optimizer_tensors());
    if (communicator_.rank() == 0) resume();
    // Rank 0's weights, optimizer state and position, whether initialised or loaded.
    broadcast_tensors(communicator_, model_tensors(*model_));
    broadcast_tensors(communicator_, optimizer_tensors());
    broadcast_state(communicator_, state_);
    optimizer_->set_steps(optimizer_steps_.to_vector<std::int64_t>()[0]);
    task_->set_data_state(state_.data);
    default_generator().set_state(rank_stream(state_.rng, communicator_.rank()));
    // The weights now are the newest checkpoint's (or the initial ones).
    saved_step_ = state_.step > 0 ? state_.step : -1;
    last_update_step_ = state_.step;
  }

  TrainSummary run() {
    TrainSummary summary;
    summary.first_step = state_.step + 1;
    summary.metric = metric_;
    const std::int64_t steps = config_.train.steps;
    if (state_.step >= steps) {
      // Re-running a finished run changes nothing: not its checkpoints (even
      // with other --set values), not its config.yaml.
      spdlog::info("the run is at step {}, train.steps is {}: nothing to do", state_.step, steps);
      summary.last_step = state_.step;
      summary.best_metric = state_.best_metric;
      return summary;
    }
    if (communicator_.rank() == 0) {
      detail::write_file_atomically(options_.run_dir / "config.yaml", config_yaml_);
    }
    try {
      if (options_.memory_plan) log_memory_plan();
      train_steps(summary);
    } catch (const LogWriteError& error) {
      throw Error(topkformer::detail::concat(error.what(), "; stopping at step ", state_.step, ": ",
                                             save_after_failure(),
                                             "; free space and continue with --resume auto"));
    }
    summary.last_step = state_.step;
    summary.best_metric = state_.best_metric;
    return summary;
  }

 private:
  void train_steps(TrainSummary& summary) {
    const std::int64_t steps = config_.train.steps;
    const double elapsed_before = state_.elapsed_seconds;
    const Clock::time_point session_start = Clock::now();
    Interval interval;
    std::int64_t bad_in_row = 0;
    allocator_for(Device::parse(config_.runtime.device)).reset_peak();

    while (state_.step < steps) {
      // Every rank must stop (and save) at the same step, whichever received
      // the signal: rank 0's clock decides the timed saves.
      const double minutes = config_.train.save_every_minutes;
      const bool save_due = communicator_.rank() == 0 && minutes > 0 &&
                            seconds_since(last_save_time_) >= minutes * 60.0;
      const bool stop = options_.stop_requested != nullptr && options_.stop_requested->load();
      const std::vector<double> flags =
          sum_over_ranks(communicator_, {stop ? 1.0 : 0.0, save_due ? 1.0 : 0.0});
      if (flags[0] > 0) {
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
        ++interval.skipped;
        spdlog::warn("step {}: loss {} and gradient norm {}: skipping the update ({} in a row)",
                     step, loss, grad_norm, bad_in_row);
        TKF_CHECK(bad_in_row <= config_.train.max_bad_steps, "step ", step, ": ", bad_in_row,
                  " steps in a row had a NaN or Inf loss or gradient norm (train.max_bad_steps ",
                  config_.train.max_bad_steps, "); stopping. ", advice_after_bad_steps());
      } else {
        bad_in_row = 0;
        optimizer_->step(learning_rate, optim::clip_factor(grad_norm, config_.optimizer.clip_norm));
        optimizer_->zero_grad();
        last_update_step_ = step;
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
                       state_.evals_without_improvement, metric_name(metric_));
          summary.stopped_early = true;
        }
      }
      if (improved || step == steps || summary.stopped_early || flags[1] > 0 ||
          (config_.train.save_every > 0 && step % config_.train.save_every == 0)) {
        summary.last_checkpoint = save(improved);
      }
      log_.check();
      if (summary.stopped_early) break;
    }
    if (state_.step != saved_step_ && state_.step >= summary.first_step) {
      summary.last_checkpoint = save(false);
    }
  }

  // The memory plan (train/memory_plan.h): a dry run of this run's model on
  // synthetic batches of its longest shapes, logged before the first step,
  // with a warning on each rank whose process is predicted not to fit.
  void log_memory_plan() {
    MemoryPlan plan;
    try {
      plan =
          measure_memory(*task_, config_, {.steps = 2, .ranks = shard_.count, .load_data = true});
    } catch (const std::exception& error) {
      throw Error(fmt::format(
          "memory plan: the dry run on synthetic data of the config's longest shapes failed ({}); "
          "`train --no-plan` skips it",
          error.what()));
    }
    const MemoryPeaks peaks = plan.run();
    spdlog::info("plan: {:.1f} MiB live, {:.1f} MiB reserved, {:.0f} MiB resident ({})",
                 double(peaks.live) / (1 << 20), double(peaks.reserved) / (1 << 20),
                 double(peaks.resident) / (1 << 20), plan.method());
    log_.metrics({{"type", "plan"},
                  {"step", state_.step},
                  {"train", plan.train},
                  {"eval", plan.eval},
                  {"method", plan.method()}});
    warn_unless_it_fits("resident memory", peaks.resident, resident_bytes(), Device::cpu());
    if (plan.device.is_cuda()) {
      warn_unless_it_fits("reserved bytes", peaks.reserved,
                          allocator_for(plan.device).reserved_bytes(), plan.device);
    }
  }

  // Warns when a predicted peak exceeds what `device` has free now plus what
  // this process holds there already.
  static void warn_unless_it_fits(const char* figure, std::int64_t peak, std::int64_t held,
                                  Device device) {
    const std::string warning = fit_warning(figure, peak, held, device_free_bytes(device),
                                            device.is_cpu() ? "this machine" : device.str());
    if (!warning.empty()) spdlog::warn("{}", warning);
  }

  // After a log write failed on rank 0 (the other ranks wait in a collective
  // and end with the job): saves this step if it is not saved yet, and says
  // what it did.
  std::string save_after_failure() {
    if (communicator_.rank() != 0) return "rank 0 saves";
    if (state_.step == saved_step_) return "step " + std::to_string(state_.step) + " is saved";
    if (state_.step == 0) return "nothing to save";
    try {
      return "saved " + write_rank0_checkpoint(false).string();
    } catch (const std::exception& error) {
      return std::string("the checkpoint could not be saved either (") + error.what() +
             "); the newest earlier checkpoint is intact";
    }
  }

  // Facts for the user after a run of NaN/Inf steps. Checkpoints never hold
  // NaN or Inf, but finite is not healthy: when no update succeeded after the
  // newest checkpoint, it holds the very weights that gave the bad steps.
  std::string advice_after_bad_steps() const {
    double largest = 0.0;
    for (const Tensor& parameter : model_->parameters()) {
      for (const double value : parameter.to(Device::cpu()).to(DType::f64).to_vector<double>()) {
        if (std::isfinite(value)) largest = std::max(largest, std::abs(value));
      }
    }
    const std::string weights = fmt::format("the largest finite |weight| is now {:.3g}", largest);
    if (saved_step_ < 0) {
      return fmt::format(
          "No checkpoint was written; {}. Start again with a lower "
          "optimizer.learning_rate or with optimizer.clip_norm set",
          weights);
    }
    if (saved_step_ >= last_update_step_) {
      return fmt::format(
          "The checkpoints from step {} on (the newest is step {}) hold the weights these steps "
          "started from ({}), so resuming from them repeats the bad steps: resume from a "
          "checkpoint before step {} (--resume RUN/checkpoints/step_N) or start again, with a "
          "lower optimizer.learning_rate or optimizer.clip_norm set",
          last_update_step_, saved_step_, weights, last_update_step_);
    }
    return fmt::format(
        "The newest checkpoint (step {}) was written {} update(s) before the last good one "
        "(step {}; {}); check its loss in metrics.jsonl before resuming from it with a lower "
        "optimizer.learning_rate or optimizer.clip_norm set",
        saved_step_, last_update_step_ - saved_step_, last_update_step_, weights);
  }

  struct StepResult {
    double loss, grad_norm;
    BatchCounts counts;
  };

  // Gradients of the mean loss over the global batch: each rank's shard is
  // split into micro-batches (each loss weighted 1/parts: they are equally
  // large), the ranks' gradients are averaged, then measured by their norm
  // (the same on every rank once averaged), which the update clips by.
  StepResult forward_backward() {
    const std::int64_t parts = config_.train.accumulation;
    const BatchCounts counts = task_->draw_batch(parts, shard_);
    const double loss = task_->accumulate_gradients(parts, config_.train.label_smoothing);
    reducer_->average();
    const std::vector<double> totals =
        sum_over_ranks(communicator_, {loss, double(counts.examples), double(counts.tokens)});
    const double grad_norm = optim::grad_norm(model_->parameters());
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
    // The mean over the updates made; skipped (NaN/Inf) steps are counted apart.
    const double loss = interval.steps > 0 ? interval.loss / double(interval.steps) : NAN;
    const double grad_norm = interval.steps > 0 ? interval.grad_norm / double(interval.steps) : NAN;
    // The three figures of memory (docs/training.md): live tensor bytes and the
    // bytes the allocator holds, on the run's device, and the process's resident set.
    Allocator& allocator = allocator_for(Device::parse(config_.runtime.device));
    const std::int64_t peak = allocator.peak_bytes();
    const std::int64_t peak_reserved = allocator.peak_reserved_bytes();
    const std::int64_t peak_rss = resident_peak();
    allocator.reset_peak();
    reset_resident_peak();
    const std::string skipped =
        interval.skipped > 0 ? fmt::format(" ({} NaN/Inf steps skipped)", interval.skipped) : "";
    spdlog::info(
        "step {}/{} | epoch {:.2f} | loss {:.4f}{} | lr {:.3e} | grad norm {:.3f} | {:.1f} ex/s "
        "{:.0f} tok/s | peak {:.1f} MiB live, {:.1f} MiB reserved, {:.0f} MiB resident | elapsed "
        "{} "
        "| eta {}",
        state_.step, config_.train.steps, task_->epochs(), loss, skipped, learning_rate, grad_norm,
        double(interval.examples) / seconds, double(interval.tokens) / seconds,
        double(peak) / (1 << 20), double(peak_reserved) / (1 << 20), double(peak_rss) / (1 << 20),
        format_duration(state_.elapsed_seconds), format_duration(eta));
    log_.metrics({{"type", "train"},
                  {"step", state_.step},
                  {"epoch", task_->epochs()},
                  {"loss", loss},
                  {"skipped_steps", interval.skipped},
                  {"learning_rate", learning_rate},
                  {"grad_norm", grad_norm},
                  {"examples_per_second", double(interval.examples) / seconds},
                  {"tokens_per_second", double(interval.tokens) / seconds},
                  {"peak_bytes", peak},
                  {"peak_reserved_bytes", peak_reserved},
                  {"peak_rss_bytes", peak_rss},
                  {"rss_method", resident_peak_method()},
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
    if (result.interrupted) {
      spdlog::warn("eval at step {}: interrupted by the stop request (not recorded)", state_.step);
      return false;
    }
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
    if (communicator_.rank() == 0) write_rank0_checkpoint(best);
    saved_step_ = state_.step;
    last_save_time_ = Clock::now();
    communicator_.barrier();
    return path;
  }

  std::filesystem::path write_rank0_checkpoint(bool best) {
    state_.rng = {state_.rng.seed, default_generator().state().offset};
    state_.version = version();
    optimizer_steps_.fill_(double(optimizer_->steps()));
    const std::filesystem::path path = write_checkpoint(
        checkpoints_dir_, {model_tensors(*model_), optimizer_tensors(), state_, config_yaml_});
    if (best) mark_best_checkpoint(checkpoints_dir_, state_.step);
    prune_checkpoints(checkpoints_dir_, config_.train.keep_last, state_.best_step, state_.step);
    saved_step_ = state_.step;
    spdlog::info("saved {}", path.string());
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
  Metric metric_ = Metric::accuracy;
  TrainingState state_;
  std::int64_t saved_step_ = -1;                     // the step of the newest checkpoint; -1: none
  std::int64_t last_update_step_ = 0;                // the last step whose update was applied
  Clock::time_point last_save_time_ = Clock::now();  // for train.save_every_minutes
};

}  // namespace

TrainSummary run_training(const Config& config, const TrainOptions& options) {
  const bool writes = options.communicator == nullptr || options.communicator->rank() == 0;
  // One trainer per run directory, held until the run returns. config.yaml is
  // written only once the run is known to go on (Trainer::run), so a refused
  // or finished run keeps its own.
  std::optional<detail::RunDirectoryLock> lock;
  if (writes) {
    std::filesystem::create_directories(options.run_dir);
    lock.emplace(options.run_dir);
  }
  Trainer trainer(config, options);
  return trainer.run();
}

EvalResult evaluate_checkpoint(const Config& config, const std::filesystem::path& checkpoint,
                               EvalSplit split) {
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
  return json_text(eval_json(result, step));
}

}  // namespace topkformer::train
