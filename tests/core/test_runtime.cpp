// Process-wide runtime settings: the thread count and its cap, which the
// kernels' OpenMP pool and OpenBLAS share, and the C library's host memory.
#include "topkformer/core/runtime.h"

#include <cblas.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

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

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
// AddressSanitizer brings its own allocator, which these tests are not about.

// VmRSS of /proc/self/status in bytes.
std::int64_t resident_bytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return -1;
}

TEST(HostMemory, ReleaseGivesTheHeapsFreePagesBack) {
  // 64 MiB of heap blocks, touched; every other one freed, so that no freed
  // block reaches the heap's top (which free() trims by itself) and only the
  // release can give their pages back.
  constexpr std::size_t block = std::size_t{32} << 10, blocks = 2048;
  std::vector<char*> held;
  for (std::size_t i = 0; i < blocks; ++i) {
    held.push_back(static_cast<char*>(std::malloc(block)));
    for (std::size_t byte = 0; byte < block; byte += 4096) {
      static_cast<volatile char*>(held.back())[byte] = 1;
    }
  }
  for (std::size_t i = 0; i < blocks; i += 2) std::free(held[i]);
  const std::int64_t before = resident_bytes();
  release_free_host_memory();
  EXPECT_GT(before - resident_bytes(), std::int64_t{16} << 20);
  for (std::size_t i = 1; i < blocks; i += 2) std::free(held[i]);
}
#endif

}  // namespace
}  // namespace topkformer
