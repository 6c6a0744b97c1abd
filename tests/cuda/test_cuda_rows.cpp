// The CUDA gather_rows and scatter_add_rows beyond their parity rows
// (tests/kernels/test_backend_parity.cpp): repeatability under heavy
// collisions, indices out of range (the CPU's message; a failed scatter
// leaves the table as it was) and an operand on the wrong device.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cuda/cuda_test_util.h"
#include "kernels/sparse_reference.h"
#include "test_util.h"

namespace topkformer::testing {
namespace {

struct RowsCase {
  std::int64_t groups, m, picked, width;  // G, M, N, D
  bool collide;                           // every index one of 3 rows
  std::string name(DType index_dtype) const {
    return "G=" + std::to_string(groups) + " M=" + std::to_string(m) +
           " N=" + std::to_string(picked) + " D=" + std::to_string(width) +
           (collide ? " colliding " : " ") + std::string(dtype_name(index_dtype));
  }
};

const DType index_dtypes[] = {DType::i32, DType::i64};

// Index [G, N]: uniform in [0, M), or only rows 0, M / 2 and M - 1.
Tensor index_for(const RowsCase& c, DType index_dtype, std::uint64_t seed) {
  return tensor_of({c.groups, c.picked},
                   random_index_values({c.groups, c.picked}, c.m, c.collide, seed), index_dtype);
}

class CudaRowsKernel : public FloatingKernelTest {};

// The sorted scatter-add gives the same bits every time, however many entries collide.
TEST_P(CudaRowsKernel, ScatterAddIsDeterministic) {
  SKIP_WITHOUT_GPU();
  const RowsCase c{2, 1000, 20000, 70, true};
  const Tensor table = random_normal({c.groups, c.m, c.width}, dtype(), 40);
  const Tensor rows = on_gpu(random_normal({c.groups, c.picked, c.width}, dtype(), 41));
  const Tensor index = on_gpu(index_for(c, DType::i32, 42));
  const Tensor results[2] = {on_gpu(table), on_gpu(table)};
  for (const Tensor& result : results) gpu_kernels().scatter_add_rows(result, index, rows);
  EXPECT_EQ(read_values(results[0].to(Device::cpu())), read_values(results[1].to(Device::cpu())));
}

TEST_P(CudaRowsKernel, OutOfRangeIndexThrowsTheCpuErrorAndLeavesTheTable) {
  SKIP_WITHOUT_GPU();
  const Tensor table = random_normal({2, 4, 3}, dtype(), 50);
  const Tensor rows = random_normal({2, 2, 3}, dtype(), 51);
  // The bad indices sit where, unchecked, they would still land inside the
  // table (group 0 index 4 is group 1 row 0); the second has two bad entries,
  // of which the message names the first.
  const std::vector<double> bad_indices[] = {{0, 4, 1, 3}, {0, -1, 7, 3}};
  for (const DType index_dtype : index_dtypes) {
    for (const std::vector<double>& values : bad_indices) {
      const Tensor index = tensor_of({2, 2}, values, index_dtype);
      for (const bool scatter : {false, true}) {
        ASSERT_NO_FATAL_FAILURE(expect_cpu_error_and_table_kept(
            table,
            [&] {
              if (scatter) {
                cpu_kernels().scatter_add_rows(table.clone(), index, rows);
              } else {
                cpu_kernels().gather_rows(table, index, rows.clone());
              }
            },
            [&](const Tensor& gpu_table) {
              if (scatter) {
                gpu_kernels().scatter_add_rows(gpu_table, on_gpu(index), on_gpu(rows));
              } else {
                gpu_kernels().gather_rows(gpu_table, on_gpu(index), on_gpu(rows));
              }
            }));
      }
    }
  }
}

TEST_P(CudaRowsKernel, OperandOnAnotherDeviceIsAnError) {
  SKIP_WITHOUT_GPU();
  const Tensor table = on_gpu(random_normal({2, 4, 3}, dtype(), 60));
  const Tensor rows = on_gpu(random_normal({2, 2, 3}, dtype(), 61));
  const Tensor cpu_index = tensor_of({2, 2}, {0, 1, 2, 3}, DType::i64);
  expect_error_containing([&] { gpu_kernels().gather_rows(table, cpu_index, rows); },
                          {"gather_rows", "cpu"});
  expect_error_containing([&] { gpu_kernels().scatter_add_rows(table, cpu_index, rows); },
                          {"scatter_add_rows", "cpu"});
}

INSTANTIATE_TEST_SUITE_P(Cuda, CudaRowsKernel, floating_dtypes(), dtype_test_name);

}  // namespace
}  // namespace topkformer::testing
