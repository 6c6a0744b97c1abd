// The CUDA gather_rows and scatter_add_rows against their CPU twin on the same
// inputs: i32 and i64 indices, random and heavily colliding indices (every
// entry into 3 rows), widths that are and are not multiples of the 16-byte
// pack (0, 1, 3, 17, 64, 70, 768), G > 1, N = 0, operands one element off
// 16-byte alignment (the scalar path), inf and NaN in the inputs, indices
// out of range (the CPU's message; a failed scatter leaves the table as it
// was), an operand on the wrong device, and repeatability.
//
// gather_rows copies and scatter_add_rows adds every row's entries in the
// CPU's order (ascending n) with one rounding each, so both must equal the
// CPU bit for bit: the comparisons are exact.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cuda/cuda_test_util.h"
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

const RowsCase rows_cases[] = {
    {1, 1, 1, 1, false},       {2, 5, 7, 3, false},       {3, 40, 200, 64, false},
    {2, 33, 5000, 17, false},  {1, 900, 300, 768, false}, {3, 9, 4000, 70, true},
    {2, 1000, 3000, 64, true}, {2, 50, 0, 8, false},      {2, 5, 6, 0, false}};

const DType index_dtypes[] = {DType::i32, DType::i64};

// Index [G, N]: uniform in [0, M), or only rows 0, M / 2 and M - 1.
Tensor index_for(const RowsCase& c, DType index_dtype, std::uint64_t seed) {
  std::vector<double> values = read_values(
      random_uniform({c.groups, c.picked}, DType::f64, seed, 0.0, static_cast<double>(c.m)));
  const double few[3] = {0.0, static_cast<double>(c.m / 2), static_cast<double>(c.m - 1)};
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = c.collide ? few[i % 3] : std::floor(values[i]);
  }
  return tensor_of({c.groups, c.picked}, values, index_dtype);
}

// Normal values with inf, -inf and NaN in a few places.
Tensor with_specials(const Shape& shape, DType dtype, std::uint64_t seed) {
  const Tensor t = random_normal(shape, dtype, seed);
  std::vector<double> values = read_values(t);
  const double specials[3] = {std::numeric_limits<double>::infinity(),
                              -std::numeric_limits<double>::infinity(),
                              std::numeric_limits<double>::quiet_NaN()};
  for (std::size_t i = 0; i < values.size(); i += 97) values[i] = specials[(i / 97) % 3];
  write_values(t, values);
  return t;
}

// A copy on the GPU whose data starts one element past a 16-byte boundary.
Tensor misaligned_on_gpu(const Tensor& t) {
  const Tensor base = Tensor::empty({t.numel() + 1}, t.dtype(), gpu);
  Tensor view = base.narrow(0, 1, t.numel()).view(t.shape());
  view.copy_(t);
  return view;
}

class CudaRowsKernel : public FloatingKernelTest {};

TEST_P(CudaRowsKernel, GatherMatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (const DType index_dtype : index_dtypes) {
    for (const RowsCase& c : rows_cases) {
      const Tensor table = with_specials({c.groups, c.m, c.width}, dtype(), 10);
      const Tensor index = index_for(c, index_dtype, 11);
      const Tensor want = Tensor::full({c.groups, c.picked, c.width}, 7.0, dtype());
      cpu_kernels().gather_rows(table, index, want);
      const Tensor got = Tensor::full({c.groups, c.picked, c.width}, 7.0, dtype(), gpu);
      gpu_kernels().gather_rows(on_gpu(table), on_gpu(index), got);
      expect_matches_cpu(got, want, 0.0, 1.0, c.name(index_dtype));
    }
  }
}

TEST_P(CudaRowsKernel, ScatterAddMatchesCpuBitForBit) {
  SKIP_WITHOUT_GPU();
  for (const DType index_dtype : index_dtypes) {
    for (const RowsCase& c : rows_cases) {
      const Tensor table = random_normal({c.groups, c.m, c.width}, dtype(), 20);
      const Tensor rows = with_specials({c.groups, c.picked, c.width}, dtype(), 21);
      const Tensor index = index_for(c, index_dtype, 22);
      const Tensor got = on_gpu(table);
      gpu_kernels().scatter_add_rows(got, on_gpu(index), on_gpu(rows));
      cpu_kernels().scatter_add_rows(table, index, rows);
      expect_matches_cpu(got, table, 0.0, 1.0, c.name(index_dtype));
    }
  }
}

// Operands one element off alignment take the scalar path (N = 1) with
// widths that the 16-byte path would otherwise take.
TEST_P(CudaRowsKernel, MisalignedOperandsMatchCpu) {
  SKIP_WITHOUT_GPU();
  const RowsCase c{2, 30, 500, 64, false};
  for (const DType index_dtype : index_dtypes) {
    const Tensor table = random_normal({c.groups, c.m, c.width}, dtype(), 30);
    const Tensor index = index_for(c, index_dtype, 31);
    const Tensor rows = random_normal({c.groups, c.picked, c.width}, dtype(), 32);

    const Tensor want = Tensor::empty({c.groups, c.picked, c.width}, dtype());
    cpu_kernels().gather_rows(table, index, want);
    const Tensor got = misaligned_on_gpu(Tensor::zeros(want.shape(), dtype()));
    gpu_kernels().gather_rows(misaligned_on_gpu(table), misaligned_on_gpu(index), got);
    expect_matches_cpu(got, want, 0.0, 1.0, "gather " + c.name(index_dtype));

    const Tensor sums = misaligned_on_gpu(table);
    gpu_kernels().scatter_add_rows(sums, on_gpu(index), misaligned_on_gpu(rows));
    const Tensor expected = table.clone();
    cpu_kernels().scatter_add_rows(expected, index, rows);
    expect_matches_cpu(sums, expected, 0.0, 1.0, "scatter " + c.name(index_dtype));
  }
}

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
