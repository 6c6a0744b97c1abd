// Process-wide runtime settings: the thread count and its cap, which the
// kernels' OpenMP pool and OpenBLAS share.
#include "topkformer/core/runtime.h"

#include <cblas.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "test_util.h"

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

TEST(MatmulPrecision, ParsesTheThreeNamesAndRejectsOthers) {
  EXPECT_EQ(parse_matmul_precision("fp32"), MatmulPrecision::fp32);
  EXPECT_EQ(parse_matmul_precision("tf32"), MatmulPrecision::tf32);
  EXPECT_EQ(parse_matmul_precision("bf16"), MatmulPrecision::bf16);
  EXPECT_EQ(matmul_precision_name(MatmulPrecision::bf16), "bf16");
  testing::expect_error_containing([] { parse_matmul_precision("fp16"); },
                                   {"fp32|tf32|bf16", "fp16"});
}

}  // namespace
}  // namespace topkformer
