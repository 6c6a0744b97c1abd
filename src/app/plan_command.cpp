// `topkformer plan`: a config's peak live, reserved and resident memory in
// training and evaluation, predicted by a short dry run on synthetic data, and
// with --memory-budget the longest length and largest batch per attention
// variant that fit it (train/memory_plan.h).
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "app/bench_report.h"
#include "app/commands.h"
#include "app/config_options.h"
#include "topkformer/core/error.h"
#include "topkformer/train/memory_plan.h"
#include "train/run_log.h"

namespace topkformer::app {
namespace {

struct PlanCommandOptions {
  ConfigOptions config;
  std::string device;         // "": runtime.device
  std::string memory_budget;  // "": no budget search
  bool json = false;
};

// The value `parse` reads from an option, its errors naming the option.
template <typename Parse>
auto parse_option(const char* option, const Parse& parse) {
  try {
    return parse();
  } catch (const Error& error) {
    throw Error(std::string("plan: ") + option + ": " + error.what());
  }
}

std::string capped_text(std::int64_t value, bool capped) {
  if (value == 0) return "none";
  return (capped ? ">= " : "") + std::to_string(value);
}

nlohmann::json budget_json(const train::BudgetPlan& budget) {
  nlohmann::json variants = nlohmann::json::object();
  for (const train::VariantBudget& fit : budget.variants) {
    variants[attention::attention_kind_name(fit.kind)] = {
        {"length_growth", fit.length_degree == 2 ? "quadratic" : "linear"},
        {"probe_lengths", fit.probe_lengths},
        {"longest_length", fit.longest_length},
        {"length_capped", fit.length_capped},
        {"largest_batch", fit.largest_batch},
        {"batch_capped", fit.batch_capped}};
  }
  return {{"bytes", budget.budget},
          {"figure", budget.resident ? "peak_rss_bytes" : "peak_reserved_bytes"},
          {"method", budget.method()},
          {"variants", variants}};
}

void print_table(const train::MemoryPlan& plan) {
  std::printf("%-7s %12s %12s %12s\n", "phase", "live", "reserved", "resident");
  const auto row = [](const char* phase, const train::MemoryPeaks& peaks) {
    std::printf("%-7s %12s %12s %12s\n", phase, format_bytes(peaks.live).c_str(),
                format_bytes(peaks.reserved).c_str(),
                peaks.resident < 0 ? "-" : format_bytes(peaks.resident).c_str());
  };
  row("train", plan.train);
  row("eval", plan.eval);
  row("run", plan.run());
}

void print_budget(const train::Config& config, const train::BudgetPlan& budget) {
  std::printf("\nwithin %s of peak %s (%s):\n", format_bytes(budget.budget).c_str(),
              budget.resident ? "resident memory" : "reserved bytes", budget.method().c_str());
  const std::string length_column =
      "longest data.max_length (batch " + std::to_string(config.train.batch_size) + ")";
  const std::string batch_column =
      "largest train.batch_size (length " + std::to_string(config.data.max_length) + ")";
  std::printf("%-10s %-10s %-*s %-*s %s\n", "variant", "growth", int(length_column.size()),
              length_column.c_str(), int(batch_column.size()), batch_column.c_str(),
              "dry-run lengths");
  for (const train::VariantBudget& fit : budget.variants) {
    std::string lengths;
    for (const std::int64_t length : fit.probe_lengths) {
      lengths += (lengths.empty() ? "" : ", ") + std::to_string(length);
    }
    std::printf("%-10s %-10s %-*s %-*s %s\n", attention::attention_kind_name(fit.kind).c_str(),
                fit.length_degree == 2 ? "quadratic" : "linear", int(length_column.size()),
                capped_text(fit.longest_length, fit.length_capped).c_str(),
                int(batch_column.size()), capped_text(fit.largest_batch, fit.batch_capped).c_str(),
                lengths.c_str());
  }
}

void run(const PlanCommandOptions& options) {
  // Logs (data loading) go to stderr: stdout is the plan, JSON with --json.
  spdlog::set_default_logger(spdlog::stderr_color_mt("plan"));
  train::Config config = options.config.load();
  if (!options.device.empty()) {
    config.runtime.device =
        parse_option("--device", [&] { return Device::parse(options.device).str(); });
  }
  const std::int64_t budget =
      options.memory_budget.empty()
          ? 0
          : parse_option("--memory-budget", [&] { return parse_bytes(options.memory_budget); });
  const train::MemoryPlan plan = train::plan_memory(config);
  nlohmann::json result = {
      {"config", options.config.file},
      {"device", plan.device.str()},
      {"method", plan.method()},
      {"train", plan.train},
      {"eval", plan.eval},
      {"run", plan.run()},
      {"step_batch", {{"examples", plan.step_batch.examples}, {"tokens", plan.step_batch.tokens}}},
      {"eval_batch", {{"examples", plan.eval_batch.examples}, {"tokens", plan.eval_batch.tokens}}}};
  if (!options.json) {
    std::printf("plan of %s: %s\n", options.config.file.c_str(), plan.method().c_str());
    print_table(plan);
  }
  if (budget > 0) {
    const train::BudgetPlan fits = train::plan_budget(config, plan, budget);
    result["budget"] = budget_json(fits);
    if (!options.json) print_budget(config, fits);
  }
  if (options.json) std::cout << train::json_text(result, 2) << std::endl;
}

}  // namespace

void add_plan_command(CLI::App& app) {
  auto options = std::make_shared<PlanCommandOptions>();
  CLI::App* command = app.add_subcommand(
      "plan",
      "Predict a config's peak memory in training and evaluation by a dry run on synthetic data, "
      "and the longest length and largest batch per attention variant within --memory-budget");
  add_config_options(command, options->config);
  command->add_option("--device", options->device,
                      "Plan for this device instead of runtime.device (cpu, cuda, cuda:N)");
  command->add_option("--memory-budget", options->memory_budget,
                      "Also find, per attention variant, the longest data.max_length and the "
                      "largest train.batch_size whose peak fits this (e.g. 16GiB): resident "
                      "memory on the CPU, reserved bytes on a GPU");
  command->add_flag("--json", options->json,
                    "Print one JSON object: train, eval and run figures (peak_bytes, "
                    "peak_reserved_bytes, peak_rss_bytes), method, budget");
  command->callback([options] { run(*options); });
}

}  // namespace topkformer::app
