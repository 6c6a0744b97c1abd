// The CUDA sparse_gather_sum, sparse_gather_dot and sparse_scatter_add against
// their CPU twin on the same inputs: i32 and i64 indices, random and heavily
// colliding indices (every entry into 3 rows), every third weight 0 with inf
// and NaN behind the zero weights (in the table for the gather, in the dense
// rows for the scatter), widths that are and are not multiples of the 16-byte
// pack, k past one warp's 32 entries (37, 64, 512), the shapes of top-k
// attention (D = 64) and of the top-k feed-forward layer (k = 512, D = 768),
// G > 1, R = 0 and k = 0, operands one element off 16-byte alignment (the
// scalar path), indices out of range (the CPU's message; a failed scatter
// leaves the table as it was), an operand on the wrong device, and
// repeatability.
//
// Tolerances: sparse_gather_sum and sparse_scatter_add add each row's terms
// in the CPU's order with one rounding each (an fma), which is the CPU's
// result bit for bit when the host compiler contracts `t += w * x` into an
// fma (GCC does for x86-64-v3); they are compared within the dtype's
// tolerance so that a compiler that does not contract still passes.
// sparse_gather_dot sums by a tree, not in sequence: the two differ by
// roundings of partial sums. Each comparison's floor is the square root of
// the terms summed into one value (the typical size of a sum of that many
// N(0, 1) products), so the relative tolerance bounds the error relative to
// the size of the terms rather than to a sum that happens to cancel.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cuda/cuda_test_util.h"
#include "test_util.h"

namespace topkformer::testing {
namespace {

struct SparseCase {
  std::int64_t groups, rows, k, table_rows, width;  // G, R, k, M, D
  bool collide;                                     // every index one of 3 rows
  std::string name(DType index_dtype) const {
    return "G=" + std::to_string(groups) + " R=" + std::to_string(rows) +
           " k=" + std::to_string(k) + " M=" + std::to_string(table_rows) +
           " D=" + std::to_string(width) + (collide ? " colliding " : " ") +
           std::string(dtype_name(index_dtype));
  }
};

const SparseCase sparse_cases[] = {
    {1, 1, 1, 1, 1, false},      {3, 5, 4, 3, 7, false},       {1, 9, 37, 4, 67, false},
    {2, 6, 3, 11, 5, false},     {2, 50, 64, 300, 64, false},  {1, 20, 512, 2000, 768, false},
    {1, 5000, 8, 50, 33, false}, {3, 300, 40, 3000, 70, true}, {2, 400, 64, 500, 64, true},
    {2, 0, 4, 5, 8, false},      {2, 3, 0, 5, 8, false}};

const DType index_dtypes[] = {DType::i32, DType::i64};

constexpr double inf = std::numeric_limits<double>::infinity();
constexpr double nan = std::numeric_limits<double>::quiet_NaN();

// Weights and index [G, R, k], table [G, M, D], dense rows [G, R, D].
struct SparseInputs {
  Tensor weights, index, table, dense;
};

// Index uniform in [0, M), or only rows 0, M / 2 and M - 1. Every third
// weight is 0, and so is every weight of an entry that points at the last
// table row or belongs to the first dense row of a group: those hold inf,
// -inf and NaN, which must add nothing to the gather and the scatter.
SparseInputs sparse_inputs(const SparseCase& c, DType dtype, DType index_dtype,
                           std::uint64_t seed) {
  const Shape entries{c.groups, c.rows, c.k};
  std::vector<double> index = read_values(
      random_uniform(entries, DType::f64, seed, 0.0, static_cast<double>(c.table_rows)));
  const double few[3] = {0.0, static_cast<double>(c.table_rows / 2),
                         static_cast<double>(c.table_rows - 1)};
  for (std::size_t e = 0; e < index.size(); ++e) {
    index[e] = c.collide ? few[e % 3] : std::floor(index[e]);
  }
  const Tensor weights = random_normal(entries, dtype, seed + 1);
  std::vector<double> w = read_values(weights);
  for (std::size_t e = 0; e < w.size(); ++e) {
    const bool first_row = (static_cast<std::int64_t>(e) / c.k) % c.rows == 0;
    if (e % 3 == 1 || first_row || index[e] == c.table_rows - 1) w[e] = 0.0;
  }
  write_values(weights, w);

  const double specials[3] = {inf, -inf, nan};
  const Tensor table = random_normal({c.groups, c.table_rows, c.width}, dtype, seed + 2);
  std::vector<double> t = read_values(table);
  const Tensor dense = random_normal({c.groups, c.rows, c.width}, dtype, seed + 3);
  std::vector<double> d = read_values(dense);
  for (std::int64_t g = 0; g < c.groups; ++g) {
    for (std::int64_t col = 0; col < c.width; ++col) {
      t[((g + 1) * c.table_rows - 1) * c.width + col] = specials[col % 3];
      if (c.rows > 0) d[g * c.rows * c.width + col] = specials[(col + 1) % 3];
    }
  }
  write_values(table, t);
  write_values(dense, d);
  return {weights, tensor_of(entries, index, index_dtype), table, dense};
}

double floor_for(std::int64_t terms) {
  return std::sqrt(static_cast<double>(std::max<std::int64_t>(terms, 1)));
}

// A copy on the GPU whose data starts one element past a 16-byte boundary.
Tensor misaligned_on_gpu(const Tensor& t) {
  const Tensor base = Tensor::empty({t.numel() + 1}, t.dtype(), gpu);
  Tensor view = base.narrow(0, 1, t.numel()).view(t.shape());
  view.copy_(t);
  return view;
}

class CudaSparseKernel : public FloatingKernelTest {
 protected:
  void check_gather_sum(const SparseCase& c, const SparseInputs& in, const Tensor& gpu_table,
                        const std::string& what) {
    const Shape shape{c.groups, c.rows, c.width};
    const Tensor want = Tensor::full(shape, 7.0, dtype());
    cpu_kernels().sparse_gather_sum(in.weights, in.index, in.table, want);
    // Garbage in the output: the kernel must overwrite, not accumulate.
    const Tensor got = Tensor::full(shape, 7.0, dtype(), gpu);
    gpu_kernels().sparse_gather_sum(on_gpu(in.weights), on_gpu(in.index), gpu_table, got);
    expect_matches_cpu(got, want, tol(), floor_for(c.k), what);
  }

  void check_gather_dot(const SparseCase& c, const SparseInputs& in, const Tensor& gpu_table,
                        const std::string& what) {
    const Shape shape{c.groups, c.rows, c.k};
    const Tensor want = Tensor::full(shape, 7.0, dtype());
    cpu_kernels().sparse_gather_dot(in.dense, in.index, in.table, want);
    const Tensor got = Tensor::full(shape, 7.0, dtype(), gpu);
    gpu_kernels().sparse_gather_dot(on_gpu(in.dense), on_gpu(in.index), gpu_table, got);
    expect_matches_cpu(got, want, tol(), floor_for(c.width), what);
  }

  void check_scatter_add(const SparseCase& c, const SparseInputs& in, const Tensor& gpu_table,
                         const std::string& what) {
    gpu_kernels().sparse_scatter_add(on_gpu(in.weights), on_gpu(in.index), on_gpu(in.dense),
                                     gpu_table);
    const Tensor want = in.table.clone();
    cpu_kernels().sparse_scatter_add(in.weights, in.index, in.dense, want);
    expect_matches_cpu(gpu_table, want, tol(), floor_for(c.groups * c.rows * c.k), what);
  }
};

TEST_P(CudaSparseKernel, GatherSumMatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (const DType index_dtype : index_dtypes) {
    for (const SparseCase& c : sparse_cases) {
      const SparseInputs in = sparse_inputs(c, dtype(), index_dtype, 100);
      check_gather_sum(c, in, on_gpu(in.table), c.name(index_dtype));
    }
  }
}

TEST_P(CudaSparseKernel, GatherDotMatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (const DType index_dtype : index_dtypes) {
    for (const SparseCase& c : sparse_cases) {
      const SparseInputs in = sparse_inputs(c, dtype(), index_dtype, 200);
      check_gather_dot(c, in, on_gpu(in.table), c.name(index_dtype));
    }
  }
}

TEST_P(CudaSparseKernel, ScatterAddMatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (const DType index_dtype : index_dtypes) {
    for (const SparseCase& c : sparse_cases) {
      const SparseInputs in = sparse_inputs(c, dtype(), index_dtype, 300);
      check_scatter_add(c, in, on_gpu(in.table), c.name(index_dtype));
    }
  }
}

// The table (and the dense rows and outputs) one element off alignment: the
// scalar path at a width the 16-byte path would otherwise take.
TEST_P(CudaSparseKernel, MisalignedOperandsMatchCpu) {
  SKIP_WITHOUT_GPU();
  const SparseCase c{2, 50, 40, 300, 64, false};
  for (const DType index_dtype : index_dtypes) {
    const SparseInputs in = sparse_inputs(c, dtype(), index_dtype, 400);
    check_gather_sum(c, in, misaligned_on_gpu(in.table), "gather_sum " + c.name(index_dtype));
    check_gather_dot(c, in, misaligned_on_gpu(in.table), "gather_dot " + c.name(index_dtype));
    check_scatter_add(c, in, misaligned_on_gpu(in.table), "scatter_add " + c.name(index_dtype));
  }
}

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
