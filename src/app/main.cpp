// topkformer: train, evaluate and benchmark memory-efficient Transformers.
#include <iostream>

#include "app/commands.h"
#include "topkformer/core/runtime.h"
#include "topkformer/dist/communicator.h"

int main(int argc, char** argv) {
  topkformer::configure_host_memory();
  CLI::App app{
      "topkformer: memory-efficient Transformers (vanilla, chunked, top-k and "
      "Performer attention)"};
  app.set_version_flag("--version", "topkformer " + topkformer::version());
  int threads = 0;
  app.add_option("--threads", threads,
                 "CPU threads for kernels and OpenBLAS (0 = all cores; at most 4 per core)")
      ->check(CLI::NonNegativeNumber);
  app.require_subcommand(1);
  app.parse_complete_callback([&] { topkformer::set_num_threads(threads); });

  topkformer::app::add_train_command(app);
  topkformer::app::add_eval_command(app);
  topkformer::app::add_plan_command(app);
  topkformer::app::add_config_command(app);
  topkformer::app::add_info_command(app);
  topkformer::app::add_bench_command(app);
  topkformer::app::add_data_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  } catch (const std::exception& error) {
    // In a job of several ranks this stops them all (a peer would otherwise
    // wait forever in its next collective).
    return topkformer::dist::report_failure(error.what());
  }
  return 0;
}
