// `topkformer bench model`: an N-layer causal decoder over increasing lengths,
// forward + backward per attention variant, and the longest length that fits
// a memory budget (the paper's Figure 3a).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <new>

#include "app/bench_report.h"
#include "app/commands.h"
#include "topkformer/attention/config.h"
#include "topkformer/autograd/tape.h"
#include "topkformer/core/allocator.h"
#include "topkformer/core/error.h"
#include "topkformer/core/runtime.h"
#include "topkformer/models/models.h"

namespace topkformer::app {

namespace {

struct ModelBenchOptions : LayerBenchOptions {
  std::int64_t layers = 12, heads = 12, d_ff = 3072, vocab_size = 1000, num_features = 256;
  std::string feed_forward = "dense";
  std::int64_t ff_chunk_size = 4096, ff_k = 128;
  bool recompute_layers = false;
  std::string memory_budget = "30GiB";
};

// How a (variant, length) row ended.
enum class Fit {
  fits,           // measured; its peak reserved bytes are within the budget
  does_not_fit,   // measured (or stopped) once its peak reserved bytes passed the budget
  out_of_memory,  // an allocation failed before the budget was reached
  skipped,        // a shorter length of the variant did not fit: not run
  not_run,        // could exceed the machine's available memory (CPU): not run
};

const char* fit_name(Fit fit) {
  switch (fit) {
    case Fit::fits:
      return "fits";
    case Fit::does_not_fit:
      return "does not fit";
    case Fit::out_of_memory:
      return "out of memory";
    case Fit::skipped:
      return "skipped";
    case Fit::not_run:
      return "not run";
  }
  return "?";
}

// Failed allocations: std::bad_alloc, or the allocators' Error.
bool is_out_of_memory(const std::exception& error) {
  if (dynamic_cast<const std::bad_alloc*>(&error) != nullptr) return true;
  return dynamic_cast<const Error*>(&error) != nullptr &&
         std::string(error.what()).find("out of memory") != std::string::npos;
}

models::ModelConfig model_config(const ModelBenchOptions& options, const std::string& variant,
                                 std::int64_t length) {
  models::ModelConfig config;
  config.vocab_size = options.vocab_size;
  config.max_length = length;
  config.positions = nn::PositionKind::learned;
  config.seed = 1;
  config.dtype = precision_dtype(options.precision);
  nn::TransformerConfig& t = config.transformer;
  t.layers = options.layers;
  t.d_model = options.d_model;
  t.heads = options.heads;
  t.d_ff = options.d_ff;
  t.dropout = 0.0;
  t.pre_layer_norm = true;
  t.recompute_layers = options.recompute_layers;
  t.attention.kind = attention::parse_attention_kind(variant);
  t.attention.k = options.k;
  t.attention.chunk_size = options.chunk_size;
  t.attention.num_features = options.num_features;
  t.feed_forward.kind = nn::parse_feed_forward_kind(options.feed_forward);
  t.feed_forward.chunk_size = options.ff_chunk_size;
  t.feed_forward.k = options.ff_k;
  t.feed_forward.activation = nn::Activation::gelu;
  return config;
}

struct VariantResult {
  std::int64_t longest_fit = 0;  // 0: none
  bool all_fit = true;
  bool stopped_by_machine = false;  // a length was not run for the machine's memory
};

void run_model_bench(const ModelBenchOptions& options) {
  const Device device = Device::parse(options.device);
  check_device(device);
  set_bench_precision(options.precision, device);
  const std::int64_t budget = parse_bytes(options.memory_budget);
  for (const std::string& variant : options.variants) attention::parse_attention_kind(variant);
  nn::parse_feed_forward_kind(options.feed_forward);
  std::vector<std::int64_t> lengths = options.lengths;
  std::sort(lengths.begin(), lengths.end());
  lengths.erase(std::unique(lengths.begin(), lengths.end()), lengths.end());
  TKF_CHECK(!lengths.empty() && lengths.front() >= 1, "bench model: --lengths must be >= 1");
  Allocator& allocator = allocator_for(device);

  std::printf(
      "bench model: %ld-layer causal decoder, d_model %ld, %ld heads, d_ff %ld (%s, GELU), vocab "
      "%ld, batch %ld, activation recomputation %s; forward + backward of the next-token loss\n"
      "budget %s on the peak reserved bytes; %s\n",
      long(options.layers), long(options.d_model), long(options.heads), long(options.d_ff),
      options.feed_forward.c_str(), long(options.vocab_size), long(options.batch),
      options.recompute_layers ? "on" : "off", format_bytes(budget).c_str(),
      resident_peak_is_resettable() ? "rss_MiB: peak resident memory of each row"
                                    : "rss_MiB: peak resident memory of the process so far");
  BenchReport report({"variant",
                      "length",
                      "batch",
                      "layers",
                      "d_model",
                      "heads",
                      "d_ff",
                      "k",
                      "chunk_size",
                      "feed_forward",
                      "recompute",
                      "precision",
                      {"budget", 15}});
  std::vector<std::pair<std::string, VariantResult>> results;
  for (const std::string& variant : options.variants) {
    VariantResult result;
    Fit stop = Fit::fits;  // once a length does not fit, the longer ones are not run
    // The last measured length: length, peak reserved, reserved before its runs.
    std::int64_t previous_length = 0, previous_peak = 0, previous_fixed = 0;
    for (std::int64_t length : lengths) {
      const std::vector<std::string> values = {variant,
                                               std::to_string(length),
                                               std::to_string(options.batch),
                                               std::to_string(options.layers),
                                               std::to_string(options.d_model),
                                               std::to_string(options.heads),
                                               std::to_string(options.d_ff),
                                               std::to_string(options.k),
                                               std::to_string(options.chunk_size),
                                               options.feed_forward,
                                               options.recompute_layers ? "1" : "0",
                                               options.precision};
      const auto add_row = [&](Fit fit, const std::optional<Measurement>& measurement) {
        std::vector<std::string> row = values;
        row.push_back(fit_name(fit));
        report.add(row, measurement);
        if (fit != Fit::fits) result.all_fit = false;
      };
      if (stop != Fit::fits) {
        add_row(stop == Fit::not_run ? Fit::not_run : Fit::skipped, std::nullopt);
        continue;
      }
      Fit fit = Fit::fits;
      std::optional<Measurement> measurement;
      try {
        autograd::Tape tape;  // dropped with whatever a failed run left on it
        autograd::TapeScope tape_scope(tape);
        allocator.empty_cache();
        models::LanguageModel model(model_config(options, variant, length));
        model.to(device);
        Generator data(7);
        const Tensor inputs =
            random_ids({options.batch, length}, options.vocab_size, data).to(device);
        const Tensor targets =
            random_ids({options.batch, length}, options.vocab_size, data).to(device);
        const std::int64_t fixed = allocator.reserved_bytes();  // weights and inputs
        // Memory grows at most quadratically with the length, so this bounds
        // the run from the previous one; past what the machine has left it
        // would not end in "does not fit" but in the kernel's OOM killer.
        // On a GPU running out is an allocation error, caught below.
        const std::int64_t available = device.is_cpu() ? available_memory_bytes() : -1;
        if (previous_length > 0 && available >= 0) {
          const double ratio = double(length) / double(previous_length);
          const double predicted =
              double(fixed) +
              double(std::max<std::int64_t>(previous_peak - previous_fixed, 0)) * ratio * ratio;
          if (predicted > double(available + fixed)) {
            std::printf("# %s at length %ld: not run, it could need up to %s and %s are free\n",
                        variant.c_str(), long(length),
                        format_bytes(std::int64_t(predicted)).c_str(),
                        format_bytes(available).c_str());
            fit = Fit::not_run;
          }
        }
        if (fit == Fit::fits) {
          const auto run = [&] {
            const Tensor loss = model.loss(inputs, targets);
            autograd::backward(loss);
            for (Tensor parameter : model.parameters()) parameter.zero_grad();
          };
          measurement =
              measure_workload(options.device, run, options.warmup, options.repeats, budget);
          fit = measurement->exceeded_limit ? Fit::does_not_fit : Fit::fits;
          previous_length = length;
          previous_peak = measurement->peak_reserved_bytes;
          previous_fixed = fixed;
        }
      } catch (const std::exception& error) {
        if (!is_out_of_memory(error)) throw;
        std::printf("# %s at length %ld: %s\n", variant.c_str(), long(length), error.what());
        fit = Fit::out_of_memory;
      }
      allocator.empty_cache();
      add_row(fit, measurement);
      if (fit == Fit::fits) {
        result.longest_fit = length;
      } else {
        stop = fit;
        if (fit == Fit::not_run) result.stopped_by_machine = true;
      }
    }
    results.emplace_back(variant, result);
  }
  if (!options.csv.empty()) report.write_csv(options.csv);

  std::printf("longest length within %s (peak reserved bytes):\n", format_bytes(budget).c_str());
  for (const auto& [variant, result] : results) {
    std::string note;
    if (result.longest_fit > 0 && result.all_fit) note = " (every length tried fits)";
    if (result.stopped_by_machine) {
      note = " (longer lengths not run: they could exceed this machine's available memory)";
    }
    std::printf("  %-10s %s%s\n", variant.c_str(),
                result.longest_fit > 0 ? std::to_string(result.longest_fit).c_str() : "none",
                note.c_str());
  }
}

}  // namespace

void add_bench_model_command(CLI::App& bench) {
  auto options = std::make_shared<ModelBenchOptions>();
  options->variants = name_strings(attention::attention_kind_names);
  options->d_model = 768;
  options->k = 64;  // the paper's 12-layer benchmark: top-64, chunks of 1024 queries
  CLI::App* command = bench.add_subcommand(
      "model",
      "An N-layer causal decoder, forward + backward, per attention variant and length, and the "
      "longest length within a memory budget");
  command
      ->add_option("--variants", options->variants,
                   join_names(attention::attention_kind_names, ","))
      ->delimiter(',');
  command->add_option("--layers", options->layers, "Transformer blocks")
      ->check(CLI::PositiveNumber);
  command->add_option("--heads", options->heads, "Attention heads")->check(CLI::PositiveNumber);
  command->add_option("--d-ff", options->d_ff, "Feed-forward hidden units")
      ->check(CLI::PositiveNumber);
  command->add_option("--vocab-size", options->vocab_size, "Vocabulary of the random tokens")
      ->check(CLI::PositiveNumber);
  command->add_option("--num-features", options->num_features, "performer: random features")
      ->check(CLI::PositiveNumber);
  command->add_option("--ff", options->feed_forward,
                      "Feed-forward variant: " + join_names(nn::feed_forward_kind_names, ", "));
  command
      ->add_option("--ff-chunk-size", options->ff_chunk_size,
                   "chunked, topk feed-forward: tokens per chunk")
      ->check(CLI::PositiveNumber);
  command->add_option("--ff-k", options->ff_k, "topk feed-forward: hidden units kept per token")
      ->check(CLI::PositiveNumber);
  command->add_flag(
      "--recompute-layers,--checkpoint-layers", options->recompute_layers,
      "Recompute each block in the backward pass (--checkpoint-layers: the old name)");
  command->add_option("--memory-budget", options->memory_budget,
                      "Longest length that fits: peak reserved bytes at most this (e.g. 30GiB)");
  add_layer_bench_options(*command, *options, false);
  command->callback([options] { run_model_bench(*options); });
}

}  // namespace topkformer::app
