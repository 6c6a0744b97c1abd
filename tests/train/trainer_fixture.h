// The fixture of the end-to-end training tests: tiny configs from
// configs/tests/ (with the ListOps and AAN data they read) and run options in
// a temporary folder.
#pragma once

#include <filesystem>
#include <fstream>
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

  // The AAN tiny config reading pairs written into the test's folder: byte
  // strings in the official format, label 1 when both texts are made of the
  // same letter.
  Config aan_config(std::vector<std::string> overrides = {}) {
    const std::filesystem::path dir = directory() / "aan";
    if (!std::filesystem::exists(dir)) {
      std::filesystem::create_directories(dir);
      write_aan_split(dir / "new_aan_pairs.train.tsv", 64, 0);
      write_aan_split(dir / "new_aan_pairs.eval.tsv", 16, 1);
      write_aan_split(dir / "new_aan_pairs.test.tsv", 16, 2);
    }
    overrides.insert(overrides.begin(), "data.dir=" + dir.string());
    return tiny_config("aan_tiny", overrides);
  }

  TrainOptions options(const std::string& run, const std::string& resume = "") const {
    TrainOptions result;
    result.run_dir = directory() / run;
    result.resume = resume;
    result.log_to_console = false;
    return result;
  }

 private:
  static void write_aan_split(const std::filesystem::path& path, int pairs, int seed) {
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < pairs; ++i) {
      const char first = char('a' + (i * 7 + seed) % 4), second = char('a' + (i * 3 + seed) % 4);
      out << (first == second ? "1" : "0") << "\tid" << i << "\tid" << i + 1 << '\t'
          << std::string(std::size_t(8 + i % 5), first) << " text\t"
          << std::string(std::size_t(6 + i % 3), second) << " other\n";
    }
  }
};

}  // namespace topkformer::train
