// sparse_gather_sum, sparse_gather_dot and sparse_scatter_add against loops in
// double over the definitions of backend.h, with i32 and i64 indices that
// repeat within a row and across rows, zero weights, odd widths (and one past
// scatter's 64-column blocks), out-of-range indices that must throw, and
// bit-for-bit repeatability on a problem large enough to run on threads.
#include <string>

#include "kernels/reference.h"

namespace topkformer::testing {
namespace {

struct SparseCase {
  std::int64_t groups, rows, k, table_rows, width;  // G, R, k, M, D
  std::string name(DType index_dtype) const {
    return "G=" + std::to_string(groups) + " R=" + std::to_string(rows) +
           " k=" + std::to_string(k) + " M=" + std::to_string(table_rows) +
           " D=" + std::to_string(width) + " " + std::string(dtype_name(index_dtype));
  }
};

// k > M in most cases, so indices repeat within a row as well as across rows;
// {3, 40, 7, 5, 70} has enough work for parallel_for to split it over threads.
const SparseCase sparse_cases[] = {
    {1, 1, 1, 1, 1}, {3, 5, 4, 3, 7}, {1, 9, 5, 4, 67}, {2, 6, 3, 11, 5}, {3, 40, 7, 5, 70}};

const DType index_dtypes[] = {DType::i32, DType::i64};

// The operands of one problem: weights and index [G, R, k], table [G, M, D],
// dense rows [G, R, D].
struct SparseInputs {
  Tensor weights, index, table, dense;
};

// Index (g + 2r + j^2) % M: with k > M, j^2 % M takes some value twice in every
// row. Every third weight is 0.
SparseInputs sparse_inputs(const SparseCase& c, DType dtype, DType index_dtype,
                           std::uint64_t seed) {
  const Shape entries{c.groups, c.rows, c.k};
  std::vector<double> index;
  for (std::int64_t g = 0; g < c.groups; ++g) {
    for (std::int64_t r = 0; r < c.rows; ++r) {
      for (std::int64_t j = 0; j < c.k; ++j)
        index.push_back(double((g + 2 * r + j * j) % c.table_rows));
    }
  }
  const Tensor weights = random_normal(entries, dtype, seed);
  std::vector<double> w = read_values(weights);
  for (std::size_t e = 1; e < w.size(); e += 3) w[e] = 0.0;
  write_values(weights, w);
  return {weights, tensor_of(entries, index, index_dtype),
          random_normal({c.groups, c.table_rows, c.width}, dtype, seed + 1),
          random_normal({c.groups, c.rows, c.width}, dtype, seed + 2)};
}

// Calls body(table_row, entry, dense_row) for every entry (g, r, j): the
// positions, in elements / D, of table[g, index[g, r, j]], of the entry, and
// of rows[g, r].
template <typename Body>
void for_each_entry(const SparseCase& c, const std::vector<std::int64_t>& index, Body&& body) {
  for (std::int64_t g = 0; g < c.groups; ++g) {
    for (std::int64_t r = 0; r < c.rows; ++r) {
      for (std::int64_t j = 0; j < c.k; ++j) {
        const std::int64_t entry = (g * c.rows + r) * c.k + j;
        body(g * c.table_rows + index[entry], entry, g * c.rows + r);
      }
    }
  }
}

// rows[g, r] = sum_j weights[g, r, j] * table[g, index[g, r, j]]
std::vector<double> reference_gather_sum(const SparseCase& c, const SparseInputs& in) {
  const std::vector<double> w = read_values(in.weights), table = read_values(in.table);
  std::vector<double> rows(static_cast<std::size_t>(c.groups * c.rows * c.width), 0.0);
  for_each_entry(c, read_indices(in.index), [&](std::int64_t t, std::int64_t e, std::int64_t r) {
    for (std::int64_t d = 0; d < c.width; ++d)
      rows[r * c.width + d] += w[e] * table[t * c.width + d];
  });
  return rows;
}

// out[g, r, j] = rows[g, r] . table[g, index[g, r, j]]
std::vector<double> reference_gather_dot(const SparseCase& c, const SparseInputs& in) {
  const std::vector<double> dense = read_values(in.dense), table = read_values(in.table);
  std::vector<double> out(static_cast<std::size_t>(c.groups * c.rows * c.k), 0.0);
  for_each_entry(c, read_indices(in.index), [&](std::int64_t t, std::int64_t e, std::int64_t r) {
    for (std::int64_t d = 0; d < c.width; ++d)
      out[e] += dense[r * c.width + d] * table[t * c.width + d];
  });
  return out;
}

// table[g, index[g, r, j]] += weights[g, r, j] * rows[g, r], from the table's
// current contents.
std::vector<double> reference_scatter_add(const SparseCase& c, const SparseInputs& in) {
  const std::vector<double> w = read_values(in.weights), dense = read_values(in.dense);
  std::vector<double> table = read_values(in.table);
  for_each_entry(c, read_indices(in.index), [&](std::int64_t t, std::int64_t e, std::int64_t r) {
    for (std::int64_t d = 0; d < c.width; ++d)
      table[t * c.width + d] += w[e] * dense[r * c.width + d];
  });
  return table;
}

class SparseProductsKernel : public FloatingKernelTest {};

TEST_P(SparseProductsKernel, GatherSumMatchesLoops) {
  for (const DType index_dtype : index_dtypes) {
    for (const SparseCase& c : sparse_cases) {
      const SparseInputs in = sparse_inputs(c, dtype(), index_dtype, 200);
      // Garbage in the output: the kernel must overwrite, not accumulate.
      const Tensor rows = Tensor::full({c.groups, c.rows, c.width}, 7.0, dtype());
      cpu_kernels().sparse_gather_sum(in.weights, in.index, in.table, rows);
      expect_all_close(rows, reference_gather_sum(c, in), tol(), 1.0, c.name(index_dtype));
    }
  }
}

TEST_P(SparseProductsKernel, GatherDotMatchesLoops) {
  for (const DType index_dtype : index_dtypes) {
    for (const SparseCase& c : sparse_cases) {
      const SparseInputs in = sparse_inputs(c, dtype(), index_dtype, 210);
      const Tensor out = Tensor::full({c.groups, c.rows, c.k}, 7.0, dtype());
      cpu_kernels().sparse_gather_dot(in.dense, in.index, in.table, out);
      expect_all_close(out, reference_gather_dot(c, in), tol(), 1.0, c.name(index_dtype));
    }
  }
}

// The table starts from random values: scatter_add must add every entry,
// repeated indices included, to what is there.
TEST_P(SparseProductsKernel, ScatterAddAccumulatesIntoTable) {
  for (const DType index_dtype : index_dtypes) {
    for (const SparseCase& c : sparse_cases) {
      const SparseInputs in = sparse_inputs(c, dtype(), index_dtype, 220);
      const std::vector<double> want = reference_scatter_add(c, in);
      cpu_kernels().sparse_scatter_add(in.weights, in.index, in.dense, in.table);
      expect_all_close(in.table, want, tol(), 1.0, c.name(index_dtype));
    }
  }
}

// A case small enough to check by hand, with exactly representable values:
// G = 1, R = 2, k = 2, M = 3, D = 2, index [[0, 0], [2, 0]], weights
// [[1, 0.5], [2, 0]], rows [[1, 2], [3, 4]], table [[10, 20], [30, 40], [50, 60]].
TEST_P(SparseProductsKernel, HandComputedExample) {
  for (const DType index_dtype : index_dtypes) {
    const Tensor index = tensor_of({1, 2, 2}, {0, 0, 2, 0}, index_dtype);
    const Tensor weights = tensor_of({1, 2, 2}, {1, 0.5, 2, 0}, dtype());
    const Tensor dense = tensor_of({1, 2, 2}, {1, 2, 3, 4}, dtype());
    const Tensor table = tensor_of({1, 3, 2}, {10, 20, 30, 40, 50, 60}, dtype());

    const Tensor sums = Tensor::empty({1, 2, 2}, dtype());
    cpu_kernels().sparse_gather_sum(weights, index, table, sums);
    // row 0: 1 * [10, 20] + 0.5 * [10, 20]; row 1: 2 * [50, 60] + 0 * [10, 20]
    EXPECT_EQ(read_values(sums), (std::vector<double>{15, 30, 100, 120}));

    const Tensor dots = Tensor::empty({1, 2, 2}, dtype());
    cpu_kernels().sparse_gather_dot(dense, index, table, dots);
    // [1, 2] . [10, 20] twice; [3, 4] . [50, 60] and [3, 4] . [10, 20]
    EXPECT_EQ(read_values(dots), (std::vector<double>{50, 50, 390, 110}));

    cpu_kernels().sparse_scatter_add(weights, index, dense, table);
    // table row 0 += 1 * [1, 2] + 0.5 * [1, 2] + 0 * [3, 4]; row 1 untouched;
    // row 2 += 2 * [3, 4]
    EXPECT_EQ(read_values(table), (std::vector<double>{11.5, 23, 30, 40, 56, 68}));
  }
}

// All weights 0: gather_sum gives 0 and scatter_add leaves the table as it was.
TEST_P(SparseProductsKernel, ZeroWeightsContributeNothing) {
  const SparseCase c{2, 5, 4, 3, 7};
  const SparseInputs in = sparse_inputs(c, dtype(), DType::i64, 230);
  const Tensor zeros = Tensor::zeros({c.groups, c.rows, c.k}, dtype());
  const Tensor rows = Tensor::full({c.groups, c.rows, c.width}, 7.0, dtype());
  cpu_kernels().sparse_gather_sum(zeros, in.index, in.table, rows);
  EXPECT_EQ(read_values(rows), std::vector<double>(std::size_t(c.groups * c.rows * c.width), 0.0));
  const std::vector<double> before = read_values(in.table);
  cpu_kernels().sparse_scatter_add(zeros, in.index, in.dense, in.table);
  EXPECT_EQ(read_values(in.table), before);
}

// Expects `call` to throw topkformer::Error whose message names `kernel`.
template <typename Call>
void expect_error_naming(const std::string& kernel, const std::string& what, Call&& call) {
  try {
    call();
    ADD_FAILURE() << kernel << " did not throw for " << what;
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find(kernel), std::string::npos)
        << "message \"" << error.what() << "\" does not name " << kernel << " (" << what << ")";
  }
}

TEST_P(SparseProductsKernel, OutOfRangeIndexThrowsNamingTheKernel) {
  // G = 2, R = 2, k = 2, M = 3, D = 4. The bad indices sit where, unchecked,
  // they would still land inside the table (group 0 index 3 is group 1 row 0,
  // group 1 index -1 is group 0 row 2), so a failure cannot corrupt memory.
  const std::vector<double> bad_indices[] = {{0, 1, 2, 3, 0, 1, 2, 0}, {0, 1, 2, 0, 0, 1, -1, 2}};
  const Tensor weights = random_normal({2, 2, 2}, dtype(), 240);
  const Tensor table = random_normal({2, 3, 4}, dtype(), 241);
  const Tensor dense = random_normal({2, 2, 4}, dtype(), 242);
  const Tensor out = Tensor::empty({2, 2, 2}, dtype());
  for (const DType index_dtype : index_dtypes) {
    for (const std::vector<double>& values : bad_indices) {
      const Tensor index = tensor_of({2, 2, 2}, values, index_dtype);
      const std::string what =
          std::string(dtype_name(index_dtype)) + " index with " + (values[3] == 3 ? "3 = M" : "-1");
      expect_error_naming("sparse_gather_sum", what,
                          [&] { cpu_kernels().sparse_gather_sum(weights, index, table, dense); });
      expect_error_naming("sparse_gather_dot", what,
                          [&] { cpu_kernels().sparse_gather_dot(dense, index, table, out); });
      expect_error_naming("sparse_scatter_add", what,
                          [&] { cpu_kernels().sparse_scatter_add(weights, index, dense, table); });
    }
  }
}

// The same inputs give the same bits, also when the work is split over threads.
TEST_P(SparseProductsKernel, RepeatedCallsAreBitForBitEqual) {
  const SparseCase c{3, 40, 7, 5, 70};
  const SparseInputs in = sparse_inputs(c, dtype(), DType::i32, 250);
  const Tensor sums[2] = {Tensor::empty({c.groups, c.rows, c.width}, dtype()),
                          Tensor::empty({c.groups, c.rows, c.width}, dtype())};
  const Tensor dots[2] = {Tensor::empty({c.groups, c.rows, c.k}, dtype()),
                          Tensor::empty({c.groups, c.rows, c.k}, dtype())};
  const Tensor tables[2] = {in.table.clone(), in.table.clone()};
  for (int run = 0; run < 2; ++run) {
    cpu_kernels().sparse_gather_sum(in.weights, in.index, in.table, sums[run]);
    cpu_kernels().sparse_gather_dot(in.dense, in.index, in.table, dots[run]);
    cpu_kernels().sparse_scatter_add(in.weights, in.index, in.dense, tables[run]);
  }
  EXPECT_EQ(read_values(sums[0]), read_values(sums[1]));
  EXPECT_EQ(read_values(dots[0]), read_values(dots[1]));
  EXPECT_EQ(read_values(tables[0]), read_values(tables[1]));
}

INSTANTIATE_TEST_SUITE_P(Sparse, SparseProductsKernel, floating_dtypes(), dtype_test_name);

}  // namespace
}  // namespace topkformer::testing
