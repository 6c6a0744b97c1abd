// Asking for a GPU (or NCCL) that is not there: a clear error naming the
// device and the reason, in every build (with or without the CUDA backend).
#include <gtest/gtest.h>

#include <string>

#include "test_util.h"
#include "topkformer/core/allocator.h"
#include "topkformer/core/device.h"
#include "topkformer/core/tensor.h"
#include "topkformer/dist/communicator.h"

namespace topkformer {
namespace {

using testing::expect_error_containing;

TEST(CudaDevice, NonexistentDeviceIsAClearError) {
  const int missing = cuda_device_count() + 2;
  const std::string name = "cuda:" + std::to_string(missing);
  EXPECT_EQ(Device::parse(name), Device::cuda(missing));
  expect_error_containing([&] { check_device(Device::cuda(missing)); }, {name, "not available"});
  expect_error_containing([&] { allocator_for(Device::cuda(missing)); }, {name, "not available"});
  expect_error_containing([&] { Tensor::empty({4}, DType::f32, Device::cuda(missing)); },
                          {name, "not available"});
  expect_error_containing([&] { Tensor::ones({2}).to(Device::parse(name)); },
                          {name, "not available"});
  expect_error_containing([&] { synchronize(Device::cuda(missing)); }, {name, "not available"});
  expect_error_containing([&] { check_device(Device::cuda(-1)); }, {"cuda:-1", "not available"});
  EXPECT_NO_THROW(check_device(Device::cpu()));
  EXPECT_NO_THROW(synchronize(Device::cpu()));
}

TEST(CudaDevice, WithoutAGpuTheErrorGivesTheReason) {
  if (cuda_device_count() > 0)
    GTEST_SKIP() << "a GPU is visible; this checks the message without one";
  const std::string reason = cuda_unavailable_reason();
  EXPECT_FALSE(reason.empty());
  expect_error_containing([&] { Tensor::empty({4}, DType::f32, Device::cuda(0)); },
                          {"cuda:0", "not available", reason});
}

TEST(NcclCommunicator, WithoutAGpuSaysSo) {
  if (cuda_device_count() > 0)
    GTEST_SKIP() << "checks the error a machine without a GPU gives, and this one has a GPU";
  EXPECT_THROW(dist::make_communicator(dist::Backend::nccl), Error);
}

}  // namespace
}  // namespace topkformer
