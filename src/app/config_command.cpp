// `topkformer config`: prints the effective config (the file, the overrides
// and the defaults of every key not given), as train writes it to RUN/config.yaml.
#include <iostream>
#include <memory>

#include "app/commands.h"
#include "app/config_options.h"

namespace topkformer::app {

void add_config_command(CLI::App& app) {
  auto options = std::make_shared<ConfigOptions>();
  CLI::App* command = app.add_subcommand("config", "Print the effective config");
  add_config_options(command, *options);
  command->callback([options] { std::cout << train::to_yaml(options->load()); });
}

}  // namespace topkformer::app
