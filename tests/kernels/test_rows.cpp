// gather_rows and scatter_add_rows against index loops, with repeated indices,
// i32 and i64 indices, and out-of-range indices that must throw.
#include <string>

#include "kernels/reference.h"

namespace topkformer::testing {
namespace {

// Index [groups, picked] with repeats: row (g + 3n) % m of group g, so every
// index appears several times when picked > m.
Tensor repeating_index(std::int64_t groups, std::int64_t picked, std::int64_t m, DType dtype) {
  std::vector<double> index;
  for (std::int64_t g = 0; g < groups; ++g) {
    for (std::int64_t n = 0; n < picked; ++n) index.push_back(double((g + 3 * n) % m));
  }
  return tensor_of({groups, picked}, index, dtype);
}

struct RowsCase {
  std::int64_t groups, m, picked, width;
};
// width 70 spans two of scatter_add_rows' 64-column blocks.
const RowsCase rows_cases[] = {{1, 1, 1, 1}, {2, 5, 7, 3}, {3, 4, 17, 70}, {1, 33, 5, 17}};

class RowsKernel : public FloatingKernelTest {};

TEST_P(RowsKernel, GatherCopiesIndexedRows) {
  for (const DType index_dtype : {DType::i32, DType::i64}) {
    for (const RowsCase& c : rows_cases) {
      const Tensor src = random_normal({c.groups, c.m, c.width}, dtype(), 90);
      const Tensor index = repeating_index(c.groups, c.picked, c.m, index_dtype);
      const Tensor rows = Tensor::empty({c.groups, c.picked, c.width}, dtype());
      cpu_kernels().gather_rows(src, index, rows);
      const std::vector<double> sv = read_values(src);
      const std::vector<std::int64_t> iv = read_indices(index);
      std::vector<double> want;
      for (std::int64_t g = 0; g < c.groups; ++g) {
        for (std::int64_t n = 0; n < c.picked; ++n) {
          const std::int64_t row = g * c.m + iv[g * c.picked + n];
          for (std::int64_t k = 0; k < c.width; ++k) want.push_back(sv[row * c.width + k]);
        }
      }
      EXPECT_EQ(read_values(rows), want) << "G=" << c.groups << " M=" << c.m << " N=" << c.picked
                                         << " D=" << c.width << " " << dtype_name(index_dtype);
    }
  }
}

TEST_P(RowsKernel, ScatterAddAccumulatesRepeatedIndices) {
  for (const DType index_dtype : {DType::i32, DType::i64}) {
    for (const RowsCase& c : rows_cases) {
      const Tensor dst = random_normal({c.groups, c.m, c.width}, dtype(), 91);
      const Tensor rows = random_normal({c.groups, c.picked, c.width}, dtype(), 92);
      const Tensor index = repeating_index(c.groups, c.picked, c.m, index_dtype);
      std::vector<double> want = read_values(dst);
      const std::vector<double> rv = read_values(rows);
      const std::vector<std::int64_t> iv = read_indices(index);
      for (std::int64_t g = 0; g < c.groups; ++g) {
        for (std::int64_t n = 0; n < c.picked; ++n) {
          const std::int64_t row = g * c.m + iv[g * c.picked + n];
          for (std::int64_t k = 0; k < c.width; ++k) {
            want[row * c.width + k] += rv[(g * c.picked + n) * c.width + k];
          }
        }
      }
      cpu_kernels().scatter_add_rows(dst, index, rows);
      expect_all_close(dst, want, tol(), 1.0,
                       "G=" + std::to_string(c.groups) + " M=" + std::to_string(c.m) +
                           " N=" + std::to_string(c.picked) + " D=" + std::to_string(c.width) +
                           " " + std::string(dtype_name(index_dtype)));
    }
  }
}

TEST_P(RowsKernel, OutOfRangeIndexThrows) {
  const Tensor table = random_normal({2, 4, 3}, dtype(), 93);
  const Tensor rows = Tensor::zeros({2, 2, 3}, dtype());
  // The bad indices sit where, unchecked, they would still land inside the
  // table (group 0 index 4 is group 1 row 0), so a failure cannot corrupt memory.
  const std::vector<double> bad_indices[] = {{0, 4, 1, 3}, {0, 1, -1, 3}};
  for (const DType index_dtype : {DType::i32, DType::i64}) {
    for (const std::vector<double>& values : bad_indices) {
      const Tensor index = tensor_of({2, 2}, values, index_dtype);
      EXPECT_THROW(cpu_kernels().gather_rows(table, index, rows), Error);
      EXPECT_THROW(cpu_kernels().scatter_add_rows(table, index, rows), Error);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Floating, RowsKernel, floating_dtypes(), dtype_test_name);

}  // namespace
}  // namespace topkformer::testing
