#include "topkformer/train/memory_plan.h"

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <tuple>
#include <utility>

#include <spdlog/fmt/fmt.h>

#include "topkformer/core/allocator.h"
#include "topkformer/core/error.h"
#include "topkformer/core/rng.h"
#include "topkformer/core/runtime.h"
#include "topkformer/optim/optimizer.h"

// Note [memory plan]
// A dry run predicts a run's memory better than a formula: it allocates what
// the run allocates, through the same model, optimizer, kernels and
// allocator, so the live peak is the run's to the byte when the run's
// batches reach data.max_length (padding goes to a batch's longest text, so
// shorter data peaks lower). The dry run leaves out the optimizer's update:
// the fused update works in place and allocates nothing, and without it the
// trainer's own model can be measured before its first step, weights
// untouched, instead of a second copy of the model and its data. The budget
// search cannot afford a dry run per candidate length, so it measures a few
// short lengths per variant and extrapolates the live bytes, which are sums
// of tensor sizes, by how the variant grows with the length at a fixed batch
// (vanilla holds L x L scores; chunked attention one chunk's chunk_size x L;
// top-k k per query; Performer num_features per token) and linearly in the
// batch. Reserved bytes jump with the allocator's blocks and cache, so they
// are the fitted live bytes times the ratio measured at the longest run.

namespace topkformer::train {

void to_json(nlohmann::json& json, const MemoryPeaks& peaks) {
  json = {{"peak_bytes", peaks.live},
          {"peak_reserved_bytes", peaks.reserved},
          {"peak_rss_bytes", peaks.resident}};
}

MemoryPeaks MemoryPlan::run() const {
  return {std::max(train.live, eval.live), std::max(train.reserved, eval.reserved),
          std::max(train.resident, eval.resident)};
}

std::string MemoryPlan::method() const {
  return fmt::format(
      "measured dry run of {} training step{} of {} examples ({} tokens) and 1 evaluation batch "
      "of {} examples ({} tokens) on synthetic data of the config's longest shapes, on {}",
      steps, steps == 1 ? "" : "s", step_batch.examples, step_batch.tokens, eval_batch.examples,
      eval_batch.tokens, device.str());
}

MemoryPlan measure_memory(Task& task, const Config& config, const DryRunOptions& options) {
  const std::int64_t parts = config.train.accumulation;
  const std::int64_t examples = config.train.batch_size / (options.ranks * parts);
  TKF_CHECK(examples > 0 && options.steps > 0, config.source, ": memory plan: train.batch_size ",
            config.train.batch_size, " gives no examples to ", options.ranks, " rank(s) x ", parts,
            " micro-batches (train.accumulation)");
  MemoryPlan plan;
  plan.device = Device::parse(config.runtime.device);
  plan.steps = options.steps;
  Allocator& allocator = allocator_for(plan.device);
  nn::Module& model = task.model();
  const std::vector<Tensor> parameters = model.parameters();

  // What a run continues from: the dropout stream, and the buffers a training
  // call may advance (Performer's features and their redraw counter). The
  // copies are on the device too, so their bytes come off its figures.
  const PhiloxState dropout_stream = default_generator().state();
  nn::NamedTensors buffers = model.named_buffers();
  std::vector<Tensor> saved_buffers;
  std::int64_t saved_bytes = 0;
  for (const auto& [name, buffer] : buffers) {
    saved_buffers.push_back(buffer.clone());
    saved_bytes += std::int64_t(buffer.nbytes());
  }
  const auto peaks = [&] {
    return MemoryPeaks{allocator.peak_bytes() - saved_bytes,
                       allocator.peak_reserved_bytes() - saved_bytes, resident_peak()};
  };
  const auto reset_peaks = [&] {
    allocator.reset_peak();
    reset_resident_peak();
  };

  // The process's peak so far (data preparation: a vocabulary built from the
  // training split) is part of the run's.
  const std::int64_t resident_before = resident_peak();
  reset_resident_peak();
  if (options.load_data) task.load_data(config.eval.split);
  allocator.empty_cache();
  allocator.reset_peak();
  for (std::int64_t step = 0; step < options.steps; ++step) {
    plan.step_batch = task.draw_synthetic_batch(parts, examples, TaskUse::training);
    task.accumulate_gradients(parts, config.train.label_smoothing);
    optim::grad_norm(parameters);
    for (Tensor parameter : parameters) parameter.zero_grad();
  }
  plan.train = peaks();
  plan.train.resident = std::max(plan.train.resident, resident_before);
  // An evaluation follows training steps in a run: the allocator keeps what
  // it cached during them.
  reset_peaks();
  {
    const EvaluationScope evaluation(model);
    plan.eval_batch = task.draw_synthetic_batch(1, config.eval.batch_size, TaskUse::evaluation);
    task.micro_batch_loss(0, 0.0).item();
  }
  plan.eval = peaks();
  plan.eval.resident = std::max(plan.eval.resident, resident_before);

  for (std::size_t i = 0; i < buffers.size(); ++i) buffers[i].second.copy_(saved_buffers[i]);
  default_generator().set_state(dropout_stream);
  saved_buffers.clear();
  allocator.empty_cache();
  reset_peaks();
  return plan;
}

MemoryPlan plan_memory(const Config& config, const DryRunOptions& options) {
  set_num_threads(int(config.runtime.threads));
  const std::unique_ptr<Task> task = make_task(config);
  task->model().train(true);
  const std::unique_ptr<optim::Optimizer> optimizer =
      config.optimizer.make(task->model().named_parameters());
  return measure_memory(*task, config, options);
}

namespace {

// A figure as a function of the length or the batch: y0 at x0 (the largest
// point measured, given exactly), b per unit and c per square unit beyond it.
struct Growth {
  double x0 = 0.0, y0 = 0.0, b = 0.0, c = 0.0;
  double at(double x) const { return y0 + b * (x - x0) + c * (x * x - x0 * x0); }
};

using Points = std::vector<std::pair<double, double>>;  // (x, bytes), x increasing

// The line through the last two points, not falling: memory does not shrink
// as the length or batch grows.
Growth fit_line(const Points& points) {
  const auto& [x0, y0] = points[points.size() - 2];
  const auto& [x1, y1] = points.back();
  return {x1, y1, std::max(0.0, (y1 - y0) / (x1 - x0)), 0.0};
}

// Through the points: a line (degree 1) or a parabola (degree 2, three
// points), with coefficients that are not negative, so that the figure never
// falls as x grows and the searches below are monotone.
Growth fit_growth(const Points& points, int degree) {
  if (degree == 1) return fit_line(points);
  const auto& [x0, y0] = points[0];
  const auto& [x1, y1] = points[1];
  const auto& [x2, y2] = points[2];
  const double slope01 = (y1 - y0) / (x1 - x0), slope12 = (y2 - y1) / (x2 - x1);
  const double c = (slope12 - slope01) / (x2 - x0);
  if (c <= 0.0) return fit_line(points);
  const double b = slope12 - c * (x1 + x2);
  if (b >= 0.0) return {x2, y2, b, c};
  // No linear term: c x^2 through the last two points.
  return {x2, y2, 0.0, std::max(0.0, (y2 - y1) / (x2 * x2 - x1 * x1))};
}

using Measured = std::vector<std::pair<double, MemoryPeaks>>;  // (x, a phase's peaks), x increasing

// A phase's reserved bytes as a function of x: its live bytes, which grow
// exactly as its tensors do, fitted, times the allocator's reserved/live
// ratio at the largest x measured, or its cache bound if that is larger (the
// reserved bytes themselves jump with the allocator's segments, and a short
// run may not reach the bound a longer one does: Note [caching allocator]).
struct ReservedGrowth {
  Growth live;
  double ratio = 1.0;
  double at(double x) const { return live.at(x) * ratio; }
};

ReservedGrowth fit_reserved(const Measured& measured, int degree) {
  Points live;
  for (const auto& [x, peaks] : measured) live.emplace_back(x, double(peaks.live));
  const MemoryPeaks& top = measured.back().second;
  const double measured_ratio = top.live > 0 ? double(top.reserved) / double(top.live) : 1.0;
  return {fit_growth(live, degree), std::max(measured_ratio, CachingAllocator::cache_limit)};
}

// The largest x in [1, cap] with predicted(x) <= budget, for a predicted that
// never falls: 0 when even 1 does not fit; capped when cap fits.
std::pair<std::int64_t, bool> largest_fitting(const std::function<double(double)>& predicted,
                                              double budget, std::int64_t cap) {
  if (predicted(1.0) > budget) return {0, false};
  if (predicted(double(cap)) <= budget) return {cap, true};
  std::int64_t fits = 1, fails = cap;
  while (fails - fits > 1) {
    const std::int64_t middle = fits + (fails - fits) / 2;
    (predicted(double(middle)) <= budget ? fits : fails) = middle;
  }
  return {fits, false};
}

// How a variant's memory grows with the length at a fixed batch, and from
// which length on (before it, a chunk or k covers every key and the growth is
// vanilla's). See Note [memory plan].
struct LengthGrowth {
  int degree = 1;
  std::int64_t from = 1;
};

LengthGrowth length_growth(const attention::AttentionConfig& attention) {
  switch (attention.kind) {
    case attention::AttentionKind::vanilla:
      return {2, 1};
    case attention::AttentionKind::chunked:
      return {1, attention.chunk_size};
    case attention::AttentionKind::topk:
      return {1, std::max(attention.k, attention.chunk_size)};
    case attention::AttentionKind::performer:
      return {1, 1};
    case attention::AttentionKind::count:
      break;
  }
  throw Error("length_growth: unknown attention kind");
}

// degree + 1 lengths at which the growth holds: halving down from the
// config's length; for a linear growth that starts above half of it, from
// where it starts, half the config's length apart (the dry runs stay short).
std::vector<std::int64_t> probe_lengths(std::int64_t length, LengthGrowth growth) {
  if (growth.degree == 2) {
    const std::int64_t top = std::max(length, growth.from << 2);
    return {top >> 2, top >> 1, top};
  }
  const std::int64_t low = std::max(growth.from, length / 2);
  return {low, std::max(length, low + std::max<std::int64_t>(length / 2, 1))};
}

// Dry runs of one variant, one step each, by (length, micro-batch examples).
class VariantProbes {
 public:
  explicit VariantProbes(Config config) : config_(std::move(config)) {}

  // A plan already measured (the config's own).
  void add(std::int64_t length, std::int64_t micro_batch, const MemoryPlan& plan) {
    plans_.emplace(std::make_pair(length, micro_batch), plan);
  }

  const MemoryPlan& at(std::int64_t length, std::int64_t micro_batch) {
    const auto key = std::make_pair(length, micro_batch);
    auto found = plans_.find(key);
    if (found == plans_.end()) {
      Config config = config_;
      config.data.max_length = length;
      if (config.model.max_length > 0) {
        config.model.max_length = std::max(config.model.max_length, length);
      }
      config.train.batch_size = micro_batch * config.train.accumulation;
      found = plans_.emplace(key, plan_memory(config, {.steps = 1, .ranks = 1, .load_data = false}))
                  .first;
    }
    return found->second;
  }

 private:
  Config config_;
  std::map<std::pair<std::int64_t, std::int64_t>, MemoryPlan> plans_;
};

}  // namespace

// The budget answers hold their prediction times this: measured at the
// answers for the IMDb word config and 4 GiB, the extrapolated resident peak
// was up to 1% low (what lies beyond the allocator grows a little with the size).
constexpr double extrapolation_margin = 1.02;

std::string BudgetPlan::method() const {
  return fmt::format(
      "extrapolated from dry runs of 1 training step and 1 evaluation batch per variant at a few "
      "lengths: live bytes by each variant's growth in the length (vanilla quadratic; chunked, "
      "topk and performer linear once the length passes chunk_size, k and chunk_size, or at "
      "once) and linearly in the batch, times the reserved/live ratio of the longest dry run "
      "(at least the allocator's cache bound, {}), plus a margin of {:.0f}%; the budget holds the "
      "peak {}",
      CachingAllocator::cache_limit, (extrapolation_margin - 1.0) * 100.0,
      resident ? "resident memory, whose part beyond the allocator's (binary, libraries, data) is "
                 "taken as measured at the config's shapes"
               : "reserved bytes");
}

BudgetPlan plan_budget(const Config& config, const MemoryPlan& plan, std::int64_t budget) {
  BudgetPlan result;
  result.budget = budget;
  result.resident = plan.device.is_cpu();
  const MemoryPeaks measured = plan.run();
  const double beyond_allocator =
      result.resident ? double(std::max<std::int64_t>(measured.resident - measured.reserved, 0))
                      : 0.0;
  const std::int64_t length = config.data.max_length;
  const std::int64_t micro_batch = config.train.batch_size / config.train.accumulation;
  for (const attention::AttentionKind kind : all_values<attention::AttentionKind>()) {
    Config variant = config;
    variant.model.transformer.attention.kind = kind;
    VariantProbes probes(variant);
    if (kind == config.model.transformer.attention.kind) probes.add(length, micro_batch, plan);
    VariantBudget fit;
    fit.kind = kind;
    const LengthGrowth growth = length_growth(variant.model.transformer.attention);
    fit.length_degree = growth.degree;
    fit.probe_lengths = probe_lengths(length, growth);
    Measured train_points, eval_points;
    for (const std::int64_t probe : fit.probe_lengths) {
      const MemoryPlan& measured_at = probes.at(probe, micro_batch);
      train_points.emplace_back(double(probe), measured_at.train);
      eval_points.emplace_back(double(probe), measured_at.eval);
    }
    const ReservedGrowth train = fit_reserved(train_points, growth.degree);
    const ReservedGrowth eval = fit_reserved(eval_points, growth.degree);
    std::tie(fit.longest_length, fit.length_capped) = largest_fitting(
        [&](double x) {
          return extrapolation_margin * (beyond_allocator + std::max(train.at(x), eval.at(x)));
        },
        double(budget), max_planned_length);

    // In the batch: the config's micro-batch and a smaller (or, at 1, a larger) one.
    const std::int64_t other = micro_batch > 1 ? 1 : 2;
    const std::int64_t smaller = std::min(micro_batch, other),
                       larger = std::max(micro_batch, other);
    const MemoryPlan& large = probes.at(length, larger);
    const ReservedGrowth batch_train = fit_reserved(
        {{double(smaller), probes.at(length, smaller).train}, {double(larger), large.train}}, 1);
    const double eval_reserved = double(large.eval.reserved);  // eval.batch_size: no change
    const auto [micro_batches, capped] = largest_fitting(
        [&](double x) {
          return extrapolation_margin *
                 (beyond_allocator + std::max(batch_train.at(x), eval_reserved));
        },
        double(budget), max_planned_batch);
    fit.largest_batch = micro_batches * config.train.accumulation;
    fit.batch_capped = capped;
    result.variants.push_back(fit);
  }
  return result;
}

std::string fit_warning(const std::string& figure, std::int64_t peak, std::int64_t held,
                        std::int64_t free, const std::string& where) {
  if (peak < 0 || held < 0 || free < 0 || peak <= free + held) return "";
  return fmt::format(
      "plan: this run is predicted to peak at {:.0f} MiB of {}, more than {} can give it "
      "({:.0f} MiB free and {:.0f} MiB held already); lower train.batch_size (raising "
      "train.accumulation keeps the update) or data.max_length, or pick a variant that fits: "
      "`topkformer plan --memory-budget SIZE`",
      double(peak) / (1 << 20), figure, where, double(free) / (1 << 20), double(held) / (1 << 20));
}

}  // namespace topkformer::train
