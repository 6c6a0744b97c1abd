// Reading the small files of checkpoints: what is not a regular file is
// refused naming it, and a state.yaml that is a folder or nested too deeply
// is an error naming the file.
#include "train/file_io.h"

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

TEST_F(FileIo, ReadFileRefusesWhatIsNotARegularFile) {
  // A folder opened as a stream, and the read threw "basic_filebuf::underflow".
  const fs::path folder = directory() / "state.yaml";
  fs::create_directory(folder);
  expect_error_containing(
      [&] { detail::read_file(folder); },
      {"cannot read '" + folder.string() + "': it is not a regular file (it is a folder)"});
  expect_error_containing([&] { detail::read_file("/dev/null"); },
                          {"cannot read '/dev/null': it is not a regular file"});
  EXPECT_EQ(detail::read_file(write("a.yaml", "step: 1\n")), "step: 1\n");
  expect_error_containing([&] { detail::read_file(directory() / "missing.yaml"); },
                          {"cannot open '" + (directory() / "missing.yaml").string() + "'"});
}

TEST_F(FileIo, StateYamlThatIsAFolderNamesTheFile) {
  const fs::path checkpoint = directory() / "step_0000001";
  fs::create_directories(checkpoint / "state.yaml");
  expect_error_containing([&] { read_training_state(checkpoint); },
                          {(checkpoint / "state.yaml").string(), "not a regular file"});
}

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
