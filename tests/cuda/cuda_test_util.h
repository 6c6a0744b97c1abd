// Tools for the CUDA tests: skipping without a GPU, and comparing a kernel's
// GPU result with its CPU twin on the same inputs.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "kernels/reference.h"
#include "topkformer/core/device.h"
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

}  // namespace topkformer::testing
