// The memory planner of `topkformer plan` and of `train`'s first line: the
// peak memory of a config's training steps and evaluation, measured by a short
// dry run on synthetic data of its longest shapes, and the longest length and
// largest batch within a budget, extrapolated per attention variant.
// See Note [memory plan] in src/train/memory_plan.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "topkformer/attention/config.h"
#include "topkformer/core/device.h"
#include "topkformer/train/config.h"
#include "topkformer/train/task.h"

namespace topkformer::train {

// The three figures of memory (docs/training.md) of one phase of a run.
struct MemoryPeaks {
  std::int64_t live = 0;       // tensor bytes on the run's device (peak_bytes)
  std::int64_t reserved = 0;   // what its allocator holds (peak_reserved_bytes)
  std::int64_t resident = -1;  // the process's resident memory (peak_rss_bytes); -1: unknown
};

// {"peak_bytes", "peak_reserved_bytes", "peak_rss_bytes"}: the names of
// metrics.jsonl and the bench CSVs.
void to_json(nlohmann::json& json, const MemoryPeaks& peaks);

struct MemoryPlan {
  Device device;
  std::int64_t steps = 0;  // training steps of the dry run
  BatchCounts step_batch;  // what one training step reads (its micro-batches together)
  BatchCounts eval_batch;  // one evaluation batch
  MemoryPeaks train;       // a training step: forward, backward, gradient norm
  MemoryPeaks eval;        // an evaluation batch
  // The larger of the two, figure by figure: what a run peaks at.
  MemoryPeaks run() const;
  // How the figures were obtained ("measured dry run of 2 training steps ...").
  std::string method() const;
};

struct DryRunOptions {
  std::int64_t steps = 2;
  // The ranks of a data-parallel job: each holds micro-batches of
  // train.batch_size / (ranks x train.accumulation) examples.
  std::int64_t ranks = 1;
  // Read the training and evaluation splits first, so that the resident
  // figures hold the data as a run does (the budget search's dry runs do not).
  bool load_data = true;
};

// Measures what `task` (built by make_task, in training mode, with its
// optimizer built: the optimizer's state is part of a step's memory) holds in
// `options.steps` training steps on synthetic batches of the config's longest
// shapes and in one evaluation batch of eval.batch_size, on runtime.device's
// allocator and in the process's resident set. The model's
// weights, buffers and the dropout stream are left as they were; the
// allocator's cache is emptied and the peaks (allocator and resident) reset
// afterwards, so that a run's figures are its own.
MemoryPlan measure_memory(Task& task, const Config& config, const DryRunOptions& options = {});

// The plan of `config` in this process: runtime.threads, the task and its
// optimizer set up as the trainer sets them up, then measure_memory.
MemoryPlan plan_memory(const Config& config, const DryRunOptions& options = {});

// The longest length and largest batch of one attention variant within a budget.
struct VariantBudget {
  attention::AttentionKind kind = attention::AttentionKind::vanilla;
  int length_degree = 1;                    // the growth in the length: 1 linear, 2 quadratic
  std::vector<std::int64_t> probe_lengths;  // where the dry runs measured it
  // The longest data.max_length at the config's train.batch_size whose
  // predicted peak fits (0: none); capped: the prediction does not reach the
  // budget below max_planned_length, which is given.
  std::int64_t longest_length = 0;
  bool length_capped = false;
  // The largest train.batch_size (a multiple of train.accumulation) at the
  // config's data.max_length that fits (0: none); capped: at max_planned_batch
  // examples per micro-batch.
  std::int64_t largest_batch = 0;
  bool batch_capped = false;
};

inline constexpr std::int64_t max_planned_length = std::int64_t{1} << 24;
inline constexpr std::int64_t max_planned_batch = std::int64_t{1} << 20;

struct BudgetPlan {
  std::int64_t budget = 0;
  // The figure held to the budget: the resident memory on the CPU, the
  // allocator's reserved bytes on a GPU (what each device must have).
  bool resident = true;
  std::vector<VariantBudget> variants;  // one per attention kind, in attention_kind_names order
  std::string method() const;
};

// For every attention kind (the config's other settings kept): the longest
// length and largest batch whose predicted peak fits `budget`, extrapolated
// from dry runs of one step at a few lengths by the variant's growth.
// `plan` is the config's own plan (plan_memory), whose resident memory
// beyond the allocator's (binary, libraries, data) the CPU predictions add.
BudgetPlan plan_budget(const Config& config, const MemoryPlan& plan, std::int64_t budget);

// The warning `train` logs when a predicted `peak` of `figure` ("resident
// memory", "reserved bytes") exceeds what `where` has free plus what this
// process holds there already; empty when it fits or a figure is unknown (< 0).
std::string fit_warning(const std::string& figure, std::int64_t peak, std::int64_t held,
                        std::int64_t free, const std::string& where);

}  // namespace topkformer::train
