// The nccl backend of dist::Communicator as a one-rank job: every collective
// on a CUDA tensor is the identity (average divides by 1), and CPU tensors go
// through the wrapped MPI communicator. Skips without a GPU, and in a build
// without MPI (where make_communicator(nccl) says what is missing).
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>

#include "cuda/cuda_test_util.h"
#include "topkformer/core/error.h"
#include "topkformer/dist/communicator.h"

namespace topkformer {
namespace {

using testing::gpu;
using testing::on_gpu;

std::unique_ptr<dist::Communicator> make_nccl_or_skip_reason(std::string& reason) {
  try {
    return dist::make_communicator(dist::Backend::nccl);
  } catch (const Error& error) {
    reason = error.what();
    return nullptr;
  }
}

TEST(NcclCommunicator, OneRankCollectivesAreTheIdentity) {
  SKIP_WITHOUT_GPU();
  std::string reason;
  const auto communicator = make_nccl_or_skip_reason(reason);
  if (!communicator) GTEST_SKIP() << reason;
  ASSERT_EQ(communicator->backend(), dist::Backend::nccl);
  ASSERT_EQ(communicator->world_size(), 1);
  ASSERT_EQ(communicator->rank(), 0);

  const Tensor values = Tensor::from_vector<float>({2, 3}, {1, -2, 3.5f, 4, 0, -6});
  for (const dist::ReduceOp op :
       {dist::ReduceOp::sum, dist::ReduceOp::average, dist::ReduceOp::max}) {
    const Tensor t = on_gpu(values);
    communicator->all_reduce(t, op);
    testing::expect_matches_cpu(t, values, 0.0, 1.0, "all_reduce");
  }
  const Tensor ints = Tensor::from_vector<std::int64_t>({3}, {7, -1, 42});
  const Tensor t = on_gpu(ints);
  communicator->all_reduce(t, dist::ReduceOp::sum);
  testing::expect_matches_cpu(t, ints, 0.0, 1.0, "all_reduce i64");

  const Tensor b = on_gpu(values);
  communicator->broadcast(b, 0);
  testing::expect_matches_cpu(b, values, 0.0, 1.0, "broadcast");

  const Tensor gathered = communicator->all_gather(on_gpu(values));
  testing::expect_matches_cpu(gathered, values.reshape({1, 2, 3}), 0.0, 1.0, "all_gather");

  // CPU tensors go through MPI.
  const Tensor cpu = values.contiguous().clone();
  communicator->all_reduce(cpu, dist::ReduceOp::average);
  testing::expect_all_close(testing::read_values(cpu), testing::read_values(values), 0.0, 1.0,
                            "cpu all_reduce");
  const Tensor cpu_gathered = communicator->all_gather(values);
  EXPECT_EQ(cpu_gathered.shape(), (Shape{1, 2, 3}));
  communicator->barrier();
}

}  // namespace
}  // namespace topkformer
