// `topkformer eval`: evaluates a checkpoint on a split. The config defaults to
// the one saved in the checkpoint; --set may swap the attention or
// feed-forward variant (the weights are the same whatever the variant), e.g.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "app/config_options.h"
#include "topkformer/core/allocator.h"
#include "topkformer/core/error.h"
#include "topkformer/core/runtime.h"
#include "topkformer/train/checkpoint.h"
#include "topkformer/train/trainer.h"
#include "train/run_log.h"

// Note [eval command]
// evaluate a model trained with vanilla attention using top-k attention, and
// change evaluation keys; keys that change the architecture are refused.

namespace topkformer::app {
namespace {

struct EvalCommandOptions {
  ConfigOptions config;
  std::string checkpoint;
  std::string split = "valid";
  std::string output;
};

// A checkpoint folder, or a run directory: its best checkpoint if it
// verifies, else its newest valid one (saying so).
std::filesystem::path checkpoint_folder(const std::filesystem::path& path) {
  const std::filesystem::path checkpoints = path / "checkpoints";
  if (!std::filesystem::is_directory(checkpoints)) return path;
  const std::filesystem::path best = checkpoints / "best";
  if (std::filesystem::exists(best)) {
    std::string why;
    if (train::verify_checkpoint(best, &why)) return std::filesystem::canonical(best);
    spdlog::warn("{} is damaged ({}): evaluating the newest valid checkpoint instead",
                 best.string(), why);
  }
  const auto latest = train::latest_checkpoint(checkpoints);
  TKF_CHECK(latest.has_value(), checkpoints.string(), ": no valid checkpoint");
  return *latest;
}

// RUN/eval.jsonl for RUN/checkpoints/step_N, else beside the checkpoint.
std::filesystem::path default_output(const std::filesystem::path& checkpoint) {
  const std::filesystem::path parent = checkpoint.parent_path();
  const std::filesystem::path run =
      parent.filename() == "checkpoints" ? parent.parent_path() : parent;
  return run / "eval.jsonl";
}

// Appends one line and checks that it reached the file (a full disk, /dev/full).
void append_line(const std::filesystem::path& output, const std::string& line) {
  std::ofstream out(output, std::ios::app);
  out << line << '\n';
  out.close();
  TKF_CHECK(!out.fail(), "cannot append the result to ", output.string(), ": ",
            std::strerror(errno), " (the result is printed above)");
}

void run(const EvalCommandOptions& options) {
  const std::filesystem::path checkpoint = checkpoint_folder(options.checkpoint);
  // Everything read from the checkpoint is read before the evaluation, so a
  // missing or damaged file never throws a finished evaluation away.
  const std::int64_t step = train::read_training_state(checkpoint).step;
  const train::Config trained = train::load_config(checkpoint / "config.yaml");
  ConfigOptions config_options = options.config;
  if (config_options.file.empty()) config_options.file = (checkpoint / "config.yaml").string();
  const train::Config config = config_options.load();
  train::check_evaluation_config(trained, config);
  const auto split =
      parse_enum<train::EvalSplit>(train::eval_split_names, options.split, "--split");
  // The three figures of memory (docs/training.md) for the whole evaluation:
  // loading the checkpoint and the data included.
  Allocator& allocator = allocator_for(Device::parse(config.runtime.device));
  allocator.reset_peak();
  reset_resident_peak();
  const train::EvalResult result = train::evaluate_checkpoint(config, checkpoint, split);

  nlohmann::json line = nlohmann::json::parse(train::to_json_line(result, step));
  line["checkpoint"] = checkpoint.string();
  line["attention"] = attention::attention_kind_name(config.model.transformer.attention.kind);
  line["feedforward"] = nn::feed_forward_kind_name(config.model.transformer.feed_forward.kind);
  line["overrides"] = options.config.overrides;
  line["peak_bytes"] = allocator.peak_bytes();
  line["peak_reserved_bytes"] = allocator.peak_reserved_bytes();
  line["peak_rss_bytes"] = resident_peak();
  line["rss_method"] = resident_peak_method();
  const std::filesystem::path output =
      options.output.empty() ? default_output(checkpoint) : std::filesystem::path(options.output);

  std::cout << options.split << " loss " << result.loss;
  if (result.accuracy) {
    std::cout << "  accuracy " << *result.accuracy << "  (majority-class baseline "
              << *result.majority_baseline << ")";
  }
  if (result.perplexity) std::cout << "  perplexity " << *result.perplexity;
  std::cout << "  [" << result.examples << " examples, " << result.seconds << " s]\n"
            << train::json_text(line, 2) << std::endl;
  append_line(output, train::json_text(line));
  std::cout << "appended to " << output.string() << '\n';
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto options = std::make_shared<EvalCommandOptions>();
  CLI::App* command = app.add_subcommand("eval", "Evaluate a checkpoint (accuracy, perplexity)");
  add_config_options(command, options->config, /*optional=*/true);
  command
      ->add_option("--checkpoint", options->checkpoint,
                   "Checkpoint folder, or a run directory (its best, else newest, checkpoint)")
      ->required()
      ->check(CLI::ExistingDirectory);
  command->add_option("--split", options->split, "Split to evaluate")
      ->check(CLI::IsMember(name_strings(train::eval_split_names)))
      ->capture_default_str();
  command->add_option("--output", options->output,
                      "JSON lines file the result is appended to (default RUN/eval.jsonl)");
  command->callback([options] { run(*options); });
}

}  // namespace topkformer::app
