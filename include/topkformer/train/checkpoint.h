// Checkpoints of a run: RUN/checkpoints/step_NNNNNNN/ with model.safetensors,
// optimizer.safetensors, state.yaml and config.yaml, written atomically.
// See Note [atomic checkpoints].
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "topkformer/core/rng.h"
#include "topkformer/data/batcher.h"
#include "topkformer/nn/module.h"

// Note [atomic checkpoints]
// model.safetensors holds parameters and buffers by dotted name,
// optimizer.safetensors the moments and step count, state.yaml where the run
// is and config.yaml the effective config. A checkpoint is written to a
// temporary folder beside the others, flushed, then renamed into place: a
// crash or kill during a save leaves the previous checkpoints intact, and a
// folder named step_* is always complete.

namespace topkformer::train {

// Everything besides tensors that resuming needs.
struct TrainingState {
  std::int64_t step = 0;              // optimizer updates done
  data::BatcherState data;            // where the training data continues
  PhiloxState rng;                    // the default generator (dropout)
  std::optional<double> best_metric;  // best evaluation so far
  std::int64_t best_step = 0;         // the step that gave it
  std::int64_t evals_without_improvement = 0;
  double elapsed_seconds = 0.0;  // training time before this checkpoint
  std::string config_hash;
  std::string version;  // framework version that wrote it
  bool operator==(const TrainingState&) const = default;
};

struct CheckpointContents {
  nn::NamedTensors model;
  nn::NamedTensors optimizer;
  TrainingState state;
  std::string config_yaml;
};

// "step_0000042": step numbers padded to 7 digits so names sort by step.
std::string checkpoint_name(std::int64_t step);

// Writes checkpoints_dir/checkpoint_name(state.step) atomically and returns
// its path. An existing checkpoint of that step is replaced. Throws (writing
// nothing) when a model or optimizer tensor holds NaN or Inf. An empty
// state.version is recorded as topkformer::version(). `after_file`, when
// given, is called after each file is written with its name (tests use it to
// fail a save midway; an exception from it, as any other, removes the
// temporary folder and leaves the existing checkpoints as they were).
std::filesystem::path write_checkpoint(
    const std::filesystem::path& checkpoints_dir, const CheckpointContents& contents,
    const std::function<void(const std::string& file)>& after_file = {});

// Verifies a checkpoint folder (as verify_checkpoint), loads it into the given
// tensors (in place; names, dtypes and shapes must match: every model tensor
// must be in model.safetensors, whose other tensors are ignored; optimizer
// tensors must match optimizer.safetensors exactly, both ways) and returns its
// state. Everything is checked before any tensor changes. Errors name the file
// and the tensor.
TrainingState load_checkpoint(const std::filesystem::path& checkpoint_dir,
                              const nn::NamedTensors& model, const nn::NamedTensors& optimizer);
// Reads state.yaml alone.
TrainingState read_training_state(const std::filesystem::path& checkpoint_dir);

// Whether the folder is a complete checkpoint whose files all verify (every
// byte: the tensors and both YAML files, whose checksums model.safetensors
// holds; and state.yaml's step matches a step_* folder name); when not, `why`
// (if given) says what is wrong. Reads every file in full.
bool verify_checkpoint(const std::filesystem::path& checkpoint_dir, std::string* why = nullptr);

// The newest checkpoint in checkpoints_dir that verifies, skipping (with a
// logged warning naming it and the reason) damaged ones; nullopt when none.
std::optional<std::filesystem::path> latest_checkpoint(
    const std::filesystem::path& checkpoints_dir);

// Deletes step checkpoints beyond the newest `keep_last` that verify
// (keep_last <= 0: keeps them all), never the one of `keep_step` (the best;
// pass -1 for none), and any temporary folders (.tmp-*) a crash left behind.
// Damaged checkpoints do not count towards keep_last; `saved_step` (the one
// the caller just wrote, -1 for none) counts without being read again. Each
// folder is renamed to a .tmp- name before it is deleted, so a kill midway
// never leaves a half-deleted step_* folder. Only one process may save into
// checkpoints_dir at a time (its temporary folder would go too).
// `before_delete`, when given, is called with each folder about to be deleted
// (tests use it to stop a prune midway, as a kill would).
void prune_checkpoints(
    const std::filesystem::path& checkpoints_dir, std::int64_t keep_last, std::int64_t keep_step,
    std::int64_t saved_step = -1,
    const std::function<void(const std::filesystem::path& doomed)>& before_delete = {});

// Points checkpoints_dir/best (a symbolic link, replaced atomically) at the
// checkpoint of `step`.
void mark_best_checkpoint(const std::filesystem::path& checkpoints_dir, std::int64_t step);

}  // namespace topkformer::train
