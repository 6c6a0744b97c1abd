// The training loop of `topkformer train` and the checkpoint evaluation of
// `topkformer eval`.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "topkformer/dist/communicator.h"
#include "topkformer/train/config.h"
#include "topkformer/train/task.h"

namespace topkformer::train {

struct TrainOptions {
  // Holds config.yaml, train.log, metrics.jsonl and checkpoints/.
  std::filesystem::path run_dir;
  // "": a new run (an error when run_dir already has checkpoints, so nothing
  // is overwritten); "auto": continue from the newest valid checkpoint in
  // run_dir, or start when there is none; otherwise a checkpoint folder.
  std::string resume;
  // Set (e.g. by a signal handler) to finish the current step, save a
  // checkpoint and return.
  const std::atomic<bool>* stop_requested = nullptr;
  bool log_to_console = true;
  // Before the first step, measure the run's memory by a dry run on synthetic
  // data (train/memory_plan.h), log it and warn when it is predicted not to
  // fit the memory the machine has free.
  bool memory_plan = true;
  // The ranks of a data-parallel run (dist/communicator.h); none: one process.
  // Each rank takes its slice of every global batch (train.batch_size);
  // rank 0 alone logs and writes checkpoints.
  dist::Communicator* communicator = nullptr;
};

struct TrainSummary {
  std::int64_t first_step = 0;  // the first step this call ran (1-based)
  std::int64_t last_step = 0;   // the step the run reached
  std::vector<double> losses;   // of every step this call ran, averaged over the ranks
  std::optional<EvalResult> last_eval;
  Metric metric = Metric::accuracy;   // the one train.best_metric selects by
  std::optional<double> best_metric;  // its best value so far
  std::filesystem::path last_checkpoint;
  bool interrupted = false;    // stopped by stop_requested
  bool stopped_early = false;  // by train.early_stopping
};

// Trains as `config` says. Throws Error when the run cannot go on (bad data,
// more than train.max_bad_steps NaN/Inf steps in a row); checkpoints written
// until then stay valid.
TrainSummary run_training(const Config& config, const TrainOptions& options);

// Loads the model weights of a checkpoint folder into the model `config`
// describes (whose attention and feed-forward variants may differ from the
// ones it was trained with) and evaluates `split`.
EvalResult evaluate_checkpoint(const Config& config, const std::filesystem::path& checkpoint,
                               EvalSplit split);

// The result as one line of JSON (what metrics.jsonl and `eval` write).
std::string to_json_line(const EvalResult& result, std::int64_t step);

}  // namespace topkformer::train
