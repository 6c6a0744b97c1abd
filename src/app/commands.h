// Subcommands of the topkformer tool; each registers itself on its parent.
#pragma once

#include <CLI/CLI.hpp>

namespace topkformer::app {

void add_info_command(CLI::App& app);
void add_bench_command(CLI::App& app);  // the `bench` group and its members below
void add_data_command(CLI::App& app);   // the `data` group: dataset preparation
void add_config_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_plan_command(CLI::App& app);

void add_bench_matmul_command(CLI::App& bench);
void add_bench_attention_command(CLI::App& bench);
void add_bench_feed_forward_command(CLI::App& bench);
void add_bench_model_command(CLI::App& bench);
void add_bench_train_command(CLI::App& bench);

}  // namespace topkformer::app
