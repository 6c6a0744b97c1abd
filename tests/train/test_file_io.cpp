// Reading the small files of checkpoints and configs: what is not a regular
// file is refused naming it, a capped read stops at its cap, and a state.yaml
// that is a folder or nested too deeply is an error naming the file.
#include "train/file_io.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
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

TEST(ReadAtMost, StopsOneBytePastTheCap) {
  std::istringstream ten("0123456789");
  EXPECT_EQ(detail::read_at_most(ten, 10), "0123456789");
  std::istringstream eleven("0123456789a");
  EXPECT_EQ(detail::read_at_most(eleven, 10), std::nullopt);
  EXPECT_EQ(eleven.tellg(), 11);  // nothing read past the byte that tells
  std::istringstream empty("");
  EXPECT_EQ(detail::read_at_most(empty, 0), "");
  // A stream without end: 1 MiB + 1 bytes are read, then it stops.
  std::ifstream zeros("/dev/zero", std::ios::binary);
  ASSERT_TRUE(zeros);
  EXPECT_EQ(detail::read_at_most(zeros, 1 << 20), std::nullopt);
}

}  // namespace
}  // namespace topkformer::train
