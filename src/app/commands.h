// Subcommands of the topkformer tool; each registers itself on the app.
#pragma once

#include <CLI/CLI.hpp>

namespace topkformer::app {

void add_info_command(CLI::App& app);
void add_bench_command(CLI::App& app);

}  // namespace topkformer::app
