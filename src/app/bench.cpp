// `topkformer bench ...`: time and peak memory of kernels, layers, models and training.
#include "app/commands.h"

namespace topkformer::app {

void add_bench_command(CLI::App& app) {
  CLI::App* bench = app.add_subcommand(
      "bench", "Measure the time and memory of kernels, layers, models and training");
  bench->require_subcommand(1);
  add_bench_matmul_command(*bench);
  add_bench_attention_command(*bench);
  add_bench_feed_forward_command(*bench);
  add_bench_model_command(*bench);
  add_bench_train_command(*bench);
}

}  // namespace topkformer::app
