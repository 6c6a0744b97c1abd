// `topkformer config`: prints the effective config (the file, the overrides
// and the defaults of every key not given), as train writes it to
// RUN/config.yaml; with --list-choices, the names every choice key takes.
#include <iostream>
#include <memory>

#include "app/commands.h"
#include "app/config_options.h"

namespace topkformer::app {

namespace {

struct ConfigCommandOptions {
  ConfigOptions config;
  bool list_choices = false;
};

}  // namespace

void add_config_command(CLI::App& app) {
  auto options = std::make_shared<ConfigCommandOptions>();
  CLI::App* command = app.add_subcommand("config", "Print the effective config");
  add_config_options(command, options->config, /*optional=*/true);
  command
      ->add_flag("--list-choices", options->list_choices,
                 "Print every choice key and its names instead, one `section.key: a|b|c` line "
                 "each (`auto` is no value: see docs/config.md)")
      ->excludes("--config")
      ->excludes("--set");
  command->callback([options] {
    if (options->list_choices) {
      std::cout << train::choices_text();
      return;
    }
    if (options->config.file.empty()) throw CLI::RequiredError("--config");
    std::cout << train::to_yaml(options->config.load());
  });
}

}  // namespace topkformer::app
