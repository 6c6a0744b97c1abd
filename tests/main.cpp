#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // The token caches of the tests' files go to a folder of this process,
  // removed at the end, not to the user's ~/.cache/topkformer.
  const std::filesystem::path caches = std::filesystem::temp_directory_path() /
                                       ("topkformer-test-caches-" + std::to_string(::getpid()));
  ::setenv("TOPKFORMER_CACHE", caches.c_str(), 1);
  const int result = RUN_ALL_TESTS();
  std::filesystem::remove_all(caches);
  return result;
}
