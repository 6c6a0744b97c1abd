// The options every config-driven command takes: --config FILE and repeated
// --set section.key=value overrides.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "topkformer/train/config.h"

namespace topkformer::app {

struct ConfigOptions {
  std::string file;
  std::vector<std::string> overrides;

  train::Config load() const { return train::load_config(file, overrides); }
};

// Adds --config (required unless `optional`) and --set to `command`.
void add_config_options(CLI::App* command, ConfigOptions& options, bool optional = false);

}  // namespace topkformer::app
