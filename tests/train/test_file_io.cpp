// Reading the small files of checkpoints: a state.yaml nested too deeply is
// an error naming the file.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "data/temporary_folder.h"
#include "test_util.h"
#include "topkformer/train/checkpoint.h"

namespace topkformer::train {
namespace {

namespace fs = std::filesystem;
using testing::expect_error_containing;

class FileIo : public testing::TemporaryFolderTest {};

TEST_F(FileIo, StateYamlNestedTooDeeplySaysSo) {
  // yaml-cpp's depth limit said "bad file".
  const fs::path checkpoint = directory() / "step_0000001";
  fs::create_directories(checkpoint);
  write("step_0000001/state.yaml", "step: " + std::string(600, '['));
  expect_error_containing([&] { read_training_state(checkpoint); },
                          {(checkpoint / "state.yaml").string() + ":1: not valid YAML: lists and "
                                                                  "maps nested 500 levels deep"});
}

}  // namespace
}  // namespace topkformer::train
