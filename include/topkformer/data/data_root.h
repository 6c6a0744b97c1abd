// Where the real datasets are. They are never copied into the repository:
// tests and configs find them through data_root().
#pragma once

#include <filesystem>
#include <string>

namespace topkformer::data {

// The nearest directory at or above the working directory that holds
// CMakeLists.txt and include/topkformer (the working directory itself when
// none does): how tests find files of the source tree from a build directory.
std::filesystem::path project_root();

// $TOPKFORMER_DATA when it is set and not empty. Otherwise ../shared/data
// beside project_root(), so the tests find the data from any build directory
// inside the project.
std::filesystem::path data_root();

// data_root() / relative_path.
std::filesystem::path data_file(const std::filesystem::path& relative_path);

// Says that `file` is missing and that TOPKFORMER_DATA names the data folder:
// the message of a test that skips for want of data.
std::string missing_data_message(const std::filesystem::path& file);

}  // namespace topkformer::data

// In a GoogleTest test body (which includes <gtest/gtest.h>): skips the test
// with missing_data_message(file) when `file` does not exist.
#define TKF_SKIP_UNLESS_DATA_FILE(file)                                        \
  do {                                                                         \
    if (const std::filesystem::path tkf_data_file = (file);                    \
        !std::filesystem::exists(tkf_data_file))                               \
      GTEST_SKIP() << ::topkformer::data::missing_data_message(tkf_data_file); \
  } while (0)
