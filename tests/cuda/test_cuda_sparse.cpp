// The CUDA sparse_gather_sum, sparse_gather_dot and sparse_scatter_add beyond
// their parity rows (tests/kernels/test_backend_parity.cpp): repeatability
// under heavy collisions, indices out of range (the CPU's message; a failed
// scatter leaves the table as it was) and an operand on the wrong device.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "cuda/cuda_test_util.h"
#include "kernels/sparse_reference.h"
#include "test_util.h"

namespace topkformer::testing {
namespace {

const DType index_dtypes[] = {DType::i32, DType::i64};

class CudaSparseKernel : public FloatingKernelTest {};

// The same inputs give the same bits, however many entries collide.
TEST_P(CudaSparseKernel, RepeatedCallsAreBitForBitEqual) {
  SKIP_WITHOUT_GPU();
  const SparseCase c{2, 2000, 64, 500, 70, true};
  const SparseInputs in = sparse_inputs(c, dtype(), DType::i32, 500);
  const Tensor weights = on_gpu(in.weights), index = on_gpu(in.index), table = on_gpu(in.table),
               dense = on_gpu(in.dense);
  std::vector<double> sums[2], dots[2], tables[2];
  for (int run = 0; run < 2; ++run) {
    const Tensor sum = Tensor::empty({c.groups, c.rows, c.width}, dtype(), gpu);
    const Tensor dot = Tensor::empty({c.groups, c.rows, c.k}, dtype(), gpu);
    const Tensor scattered = table.clone();
    gpu_kernels().sparse_gather_sum(weights, index, table, sum);
    gpu_kernels().sparse_gather_dot(dense, index, table, dot);
    gpu_kernels().sparse_scatter_add(weights, index, dense, scattered);
    sums[run] = read_values(sum.to(Device::cpu()));
    dots[run] = read_values(dot.to(Device::cpu()));
    tables[run] = read_values(scattered.to(Device::cpu()));
  }
  // Compared as bits: NaN != NaN as doubles.
  const auto bits = [](const std::vector<double>& values) {
    std::vector<std::uint64_t> out(values.size());
    for (std::size_t i = 0; i < values.size(); ++i) std::memcpy(&out[i], &values[i], 8);
    return out;
  };
  EXPECT_EQ(bits(sums[0]), bits(sums[1]));
  EXPECT_EQ(bits(dots[0]), bits(dots[1]));
  EXPECT_EQ(bits(tables[0]), bits(tables[1]));
}

TEST_P(CudaSparseKernel, OutOfRangeIndexThrowsTheCpuErrorAndLeavesTheTable) {
  SKIP_WITHOUT_GPU();
  // G = 2, R = 2, k = 2, M = 3, D = 4. The bad indices sit where, unchecked,
  // they would still land inside the table (group 0 index 3 is group 1 row
  // 0); the second has two bad entries, of which the message names the first.
  const std::vector<double> bad_indices[] = {{0, 1, 2, 3, 0, 1, 2, 0}, {0, 1, 2, 0, -1, 1, 5, 2}};
  const Tensor weights = random_normal({2, 2, 2}, dtype(), 600);
  const Tensor table = random_normal({2, 3, 4}, dtype(), 601);
  const Tensor dense = random_normal({2, 2, 4}, dtype(), 602);
  for (const DType index_dtype : index_dtypes) {
    for (const std::vector<double>& values : bad_indices) {
      const Tensor index = tensor_of({2, 2, 2}, values, index_dtype);
      for (const int kernel : {0, 1, 2}) {
        const auto call = [&](kernels::Backend& kernels, const Tensor& w, const Tensor& i,
                              const Tensor& t, const Tensor& d) {
          if (kernel == 0) kernels.sparse_gather_sum(w, i, t, d);
          if (kernel == 1) kernels.sparse_gather_dot(d, i, t, w);
          if (kernel == 2) kernels.sparse_scatter_add(w, i, d, t);
        };
        ASSERT_NO_FATAL_FAILURE(expect_cpu_error_and_table_kept(
            table,
            [&] { call(cpu_kernels(), weights.clone(), index, table.clone(), dense.clone()); },
            [&](const Tensor& gpu_table) {
              call(gpu_kernels(), on_gpu(weights), on_gpu(index), gpu_table, on_gpu(dense));
            }));
      }
    }
  }
}

TEST_P(CudaSparseKernel, OperandOnAnotherDeviceIsAnError) {
  SKIP_WITHOUT_GPU();
  const Tensor weights = on_gpu(random_normal({2, 2, 2}, dtype(), 700));
  const Tensor table = on_gpu(random_normal({2, 3, 4}, dtype(), 701));
  const Tensor dense = on_gpu(random_normal({2, 2, 4}, dtype(), 702));
  const Tensor cpu_index = tensor_of({2, 2, 2}, {0, 1, 2, 0, 1, 2, 0, 1}, DType::i32);
  expect_error_containing(
      [&] { gpu_kernels().sparse_gather_sum(weights, cpu_index, table, dense); },
      {"sparse_gather_sum", "cpu"});
  expect_error_containing(
      [&] { gpu_kernels().sparse_gather_dot(dense, cpu_index, table, weights); },
      {"sparse_gather_dot", "cpu"});
  expect_error_containing(
      [&] { gpu_kernels().sparse_scatter_add(weights, cpu_index, dense, table); },
      {"sparse_scatter_add", "cpu"});
}

INSTANTIATE_TEST_SUITE_P(Cuda, CudaSparseKernel, floating_dtypes(), dtype_test_name);

}  // namespace
}  // namespace topkformer::testing
