// `topkformer train`: trains from a config into a run directory; a stop
// signal saves a checkpoint and exits 0.
// See Note [stop signals].
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "app/commands.h"
#include "app/config_options.h"
#include "topkformer/core/device.h"
#include "topkformer/dist/communicator.h"
#include "topkformer/train/trainer.h"

// Note [stop signals]
// SIGINT, SIGTERM, SIGHUP (a closed terminal), SIGQUIT and SIGUSR1 (what
// mpirun forwards) finish the current step (or cut an evaluation short), save
// a checkpoint and exit 0, so that `--resume auto` continues exactly; a
// second signal exits at once.

namespace topkformer::app {
namespace {

std::atomic<bool> stop_requested{false};
// SIGUSR1: mpirun forwards it to the ranks and exits with theirs, while it
// answers SIGTERM by killing them and exiting 1 (docs/distributed.md).
constexpr int stop_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1};

extern "C" void request_stop(int signal_number) {
  if (stop_requested.exchange(true)) std::_Exit(128 + signal_number);
}

struct TrainCommandOptions {
  ConfigOptions config;
  std::string run_dir;
  std::string resume;
  bool no_plan = false;
};

void run(const TrainCommandOptions& options) {
  train::Config config = options.config.load();
  train::TrainOptions train_options;
  train_options.run_dir =
      options.run_dir.empty()
          ? std::filesystem::path("runs") / std::filesystem::path(options.config.file).stem()
          : std::filesystem::path(options.run_dir);
  train_options.resume = options.resume;
  train_options.memory_plan = !options.no_plan;
  train_options.stop_requested = &stop_requested;
  const auto communicator = dist::make_communicator(
      dist::choose_backend(config.runtime.distributed, config.runtime.device),
      config.runtime.collective_timeout);
  // One GPU per rank: with nccl, runtime.device: cuda means this rank's GPU,
  // cuda:(local rank % GPUs), the one its NCCL communicator uses.
  if (communicator->backend() == dist::Backend::nccl && config.runtime.device == "cuda" &&
      cuda_device_count() > 0) {
    config.runtime.device =
        "cuda:" + std::to_string(communicator->local_rank() % cuda_device_count());
  }
  train_options.communicator = communicator.get();
  for (const int signal_number : stop_signals) std::signal(signal_number, request_stop);
  const train::TrainSummary summary = train::run_training(config, train_options);
  for (const int signal_number : stop_signals) std::signal(signal_number, SIG_DFL);
  if (communicator->rank() != 0) return;
  if (summary.interrupted) {
    spdlog::info("interrupted at step {}: continue with --resume auto", summary.last_step);
  } else if (summary.losses.empty()) {
    spdlog::info("nothing to do: the run is already at step {}", summary.last_step);
  } else if (summary.best_metric) {
    spdlog::info("done at step {}; best {} {:.4f}; last checkpoint {}", summary.last_step,
                 train::metric_name(summary.metric), *summary.best_metric,
                 summary.last_checkpoint.string());
  }
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto options = std::make_shared<TrainCommandOptions>();
  CLI::App* command = app.add_subcommand("train", "Train a model from a config");
  add_config_options(command, options->config);
  command->add_option("--run-dir", options->run_dir,
                      "Run directory for config, logs, metrics and checkpoints "
                      "(default runs/<config name>)");
  command->add_option("--resume", options->resume,
                      "auto: continue from the newest valid checkpoint of the run directory "
                      "(or start); or a checkpoint folder");
  command->add_flag("--no-plan", options->no_plan,
                    "Skip the memory plan before the first step (a dry run of two steps on "
                    "synthetic data: see `topkformer plan`)");
  command->callback([options] { run(*options); });
}

}  // namespace topkformer::app
