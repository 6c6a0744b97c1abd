// Process-wide runtime settings: the thread count and its cap, which the
// kernels' OpenMP pool and OpenBLAS share.
#include "topkformer/core/runtime.h"

#include <cblas.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace topkformer {
namespace {

// Restores the thread count a test changed.
class ThreadCount : public ::testing::Test {
 protected:
  void TearDown() override { set_num_threads(before_); }

 private:
  int before_ = num_threads();
};

TEST_F(ThreadCount, MoreThanFourPerCoreAreCutWithAWarning) {
  // runtime.threads = 100000 used to start 100,000 OpenBLAS threads, which
  // spin while they wait.
  const int most = 4 * static_cast<int>(std::thread::hardware_concurrency());
  ::testing::internal::CaptureStdout();
  set_num_threads(100000);
  const std::string said = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(num_threads(), most);
  EXPECT_EQ(openblas_get_num_threads(), most);
  EXPECT_NE(said.find("100000 threads requested, more than " + std::to_string(most) +
                      " (4 per core): using " + std::to_string(most)),
            std::string::npos)
      << said;
}

TEST_F(ThreadCount, UpToFourPerCoreAreKept) {
  const int most = 4 * static_cast<int>(std::thread::hardware_concurrency());
  set_num_threads(most);
  EXPECT_EQ(num_threads(), most);
  EXPECT_EQ(max_num_threads(), most);
  set_num_threads(1);
  EXPECT_EQ(num_threads(), 1);
  EXPECT_EQ(openblas_get_num_threads(), 1);
}

}  // namespace
}  // namespace topkformer
