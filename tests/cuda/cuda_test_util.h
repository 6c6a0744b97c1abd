// Tools for the CUDA tests: skipping without a GPU, comparing a kernel's GPU
// result (or error) with its CPU twin's on the same inputs, and running calls
// that should do nothing.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "kernels/reference.h"
#include "test_util.h"
#include "topkformer/core/device.h"
#include "topkformer/core/error.h"
#include "topkformer/core/tensor.h"
#include "topkformer/kernels/backend.h"

// Every test that runs a kernel starts with this: without a GPU (or without
// the CUDA backend) it skips, saying why.
#define SKIP_WITHOUT_GPU()                    \
  if (::topkformer::cuda_device_count() == 0) \
  GTEST_SKIP() << "needs a GPU: " << ::topkformer::cuda_unavailable_reason()

namespace topkformer::testing {

inline const Device gpu = Device::cuda(0);

inline kernels::Backend& gpu_kernels() {
  return kernels::backend(gpu);
}

// A copy on the GPU (contiguous).
inline Tensor on_gpu(const Tensor& t) {
  return t.to(gpu);
}

// Expects the GPU result `got` to match the CPU result `want` element by
// element: |got - want| <= rel_tol * max(|want|, floor), infinities and NaNs
// exactly (see expect_all_close). Any dtype; integers compare exactly when
// rel_tol is 0.
inline void expect_matches_cpu(const Tensor& got, const Tensor& want, double rel_tol,
                               double floor = 1.0, const std::string& what = "") {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  EXPECT_TRUE(got.device().is_cuda()) << what << ": the result is not on a GPU";
  expect_all_close(read_values(got.to(Device::cpu())), read_values(want.to(Device::cpu())), rel_tol,
                   floor, what);
}

// Runs cpu_call(), which must throw, then gpu_call(gpu_table) on a GPU copy
// of `table`: it must throw an error with the CPU's message and leave the
// table as it was. A CPU call that does not throw is a fatal failure: call
// this under ASSERT_NO_FATAL_FAILURE to end the test there.
template <typename CpuCall, typename GpuCall>
void expect_cpu_error_and_table_kept(const Tensor& table, CpuCall&& cpu_call, GpuCall&& gpu_call) {
  std::string want;
  try {
    cpu_call();
  } catch (const Error& error) {
    want = error.what();
  }
  ASSERT_FALSE(want.empty()) << "the CPU did not throw";
  const Tensor gpu_table = on_gpu(table);
  expect_error_containing([&] { gpu_call(gpu_table); }, {want});
  expect_matches_cpu(gpu_table, table, 0.0, 1.0, "the table after a failed call");
}

// Runs calls() (kernel calls on empty tensors, which launch nothing) and
// waits for the GPU, so that an error of a launch that should not have
// happened surfaces in this test rather than a later one.
template <typename Calls>
void run_and_synchronize(Calls&& calls) {
  calls();
  synchronize(gpu);
}

}  // namespace topkformer::testing
