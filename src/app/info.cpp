// `topkformer info`: version, build configuration and devices.
#include <iostream>

#include "app/commands.h"
#include "topkformer/core/runtime.h"

namespace topkformer::app {

void add_info_command(CLI::App& app) {
  CLI::App* command =
      app.add_subcommand("info", "Print the version, build configuration and devices");
  command->callback([] { std::cout << build_info() << '\n'; });
}

}  // namespace topkformer::app
