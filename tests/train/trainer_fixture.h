// The fixture of the end-to-end training tests: tiny configs from
// configs/tests/ and run options in a temporary folder.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "../data/temporary_folder.h"
#include "topkformer/data/data_root.h"
#include "topkformer/data/listops.h"
#include "topkformer/train/config.h"
#include "topkformer/train/trainer.h"

namespace topkformer::train {

class TrainerTest : public testing::TemporaryFolderTest {
 protected:
  // configs/tests/NAME.yaml with `overrides` applied after the test's own.
  Config tiny_config(const std::string& name, std::vector<std::string> overrides = {}) const {
    overrides.insert(overrides.begin(), "runtime.threads=1");
    return load_config(data::project_root() / "configs" / "tests" / (name + ".yaml"), overrides);
  }

  // The ListOps tiny config reading short generated expressions from the test's folder.
  Config listops_config(std::vector<std::string> overrides = {}) {
    const std::filesystem::path dir = directory() / "listops";
    if (!std::filesystem::exists(dir / "basic_test.tsv")) {
      data::ListOpsOptions options;
      options.min_length = 4;
      options.max_length = 40;
      options.max_depth = 3;
      data::write_listops_splits(dir, 5, {64, 32, 32}, options);
    }
    overrides.insert(overrides.begin(), "data.dir=" + dir.string());
    return tiny_config("listops_tiny", overrides);
  }

  TrainOptions options(const std::string& run, const std::string& resume = "") const {
    TrainOptions result;
    result.run_dir = directory() / run;
    result.resume = resume;
    result.log_to_console = false;
    return result;
  }
};

}  // namespace topkformer::train
