// `topkformer data ...`: prepare datasets. `data listops` writes LRA's ListOps
// splits with the seeded generator.
#include <iostream>
#include <memory>
#include <string>

#include "app/commands.h"
#include "topkformer/data/listops.h"

namespace topkformer::app {

namespace {

struct ListOpsCommandOptions {
  std::string directory;
  std::uint64_t seed = 0;
  data::ListOpsSplitSizes sizes;
  data::ListOpsOptions generator;
};

void add_data_listops_command(CLI::App& data_command) {
  auto options = std::make_shared<ListOpsCommandOptions>();
  CLI::App* listops = data_command.add_subcommand(
      "listops", "Generate LRA ListOps: DIR/basic_{train,val,test}.tsv (Source<TAB>Target)");
  listops->add_option("--out", options->directory, "Directory to write the three files into")
      ->required();
  listops->add_option("--seed", options->seed, "Seed; each split gets its own seed derived from it")
      ->capture_default_str();
  listops->add_option("--train", options->sizes.train, "Training examples")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  listops->add_option("--val", options->sizes.val, "Validation examples")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  listops->add_option("--test", options->sizes.test, "Test examples")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  listops
      ->add_option("--min-length", options->generator.min_length,
                   "Keep expressions longer than this many tokens")
      ->capture_default_str();
  listops
      ->add_option("--max-length", options->generator.max_length,
                   "Keep expressions shorter than this many tokens")
      ->capture_default_str();
  listops->add_option("--max-depth", options->generator.max_depth, "Deepest node (the root is 1)")
      ->capture_default_str();
  listops->add_option("--max-args", options->generator.max_args, "Most arguments per operator")
      ->capture_default_str();
  listops->callback([options] {
    const auto written = data::write_listops_splits(options->directory, options->seed,
                                                    options->sizes, options->generator);
    const std::int64_t counts[] = {options->sizes.train, options->sizes.val, options->sizes.test};
    for (std::size_t split = 0; split < written.size(); ++split)
      std::cout << "wrote " << counts[split] << " examples to " << written[split].string() << '\n';
  });
}

}  // namespace

void add_data_command(CLI::App& app) {
  CLI::App* data_command = app.add_subcommand("data", "Prepare datasets");
  data_command->require_subcommand(1);
  add_data_listops_command(*data_command);
}

}  // namespace topkformer::app
