#include "app/config_options.h"

namespace topkformer::app {

void add_config_options(CLI::App* command, ConfigOptions& options, bool optional) {
  CLI::Option* config =
      command->add_option("--config", options.file, "Experiment config (YAML); see docs/config.md");
  if (!optional) config->required();
  config->check(CLI::ExistingFile);
  command
      ->add_option("--set", options.overrides,
                   "Override a config key, e.g. --set attention.k=64 (repeatable)")
      ->allow_extra_args(false);
}

}  // namespace topkformer::app
