// topk_rows against a full stable sort of each row: descending, ties to the
// lower index, NaN above everything; k from 1 to n; i32 and i64 indices.
#include <algorithm>
#include <limits>
#include <numeric>
#include <string>

#include "kernels/reference.h"
#include "test_util.h"

namespace topkformer::testing {
namespace {

struct TopK {
  std::vector<double> values;
  std::vector<std::int64_t> indices;
};

TopK reference_topk(const std::vector<double>& x, std::int64_t n, std::int64_t k) {
  TopK top;
  for (std::size_t r = 0; r < x.size() / n; ++r) {
    const double* row = x.data() + r * n;
    std::vector<std::int64_t> order(n);
    std::iota(order.begin(), order.end(), std::int64_t{0});
    // A stable sort keeps equal values in index order.
    std::stable_sort(order.begin(), order.end(), [row](std::int64_t a, std::int64_t b) {
      if (std::isnan(row[a]) || std::isnan(row[b]))
        return std::isnan(row[a]) && !std::isnan(row[b]);
      return row[a] > row[b];
    });
    for (std::int64_t j = 0; j < k; ++j) {
      top.indices.push_back(order[j]);
      top.values.push_back(row[order[j]]);
    }
  }
  return top;
}

// Checks both index dtypes the kernel may write (i32 halves what top-k attention keeps).
void check_topk(const Tensor& x, std::int64_t k, const std::string& what) {
  const std::int64_t n = x.size(-1), rows = x.numel() / n;
  const TopK want = reference_topk(read_values(x), n, k);
  for (const DType index_dtype : {DType::i64, DType::i32}) {
    const std::string context =
        what + " k " + std::to_string(k) + " " + std::string(dtype_name(index_dtype));
    const Tensor values = Tensor::empty({rows, k}, x.dtype());
    const Tensor indices = Tensor::empty({rows, k}, index_dtype);
    cpu_kernels().topk_rows(x, k, values, indices);
    EXPECT_EQ(read_indices(indices), want.indices) << context;
    // Values are copies of elements: exact, with NaN equal to NaN.
    expect_all_close(values, want.values, 0.0, 1.0, context);
  }
}

class TopKKernel : public FloatingKernelTest {};

TEST_P(TopKKernel, RandomRowsMatchFullSortForEveryK) {
  for (const Shape& shape : {Shape{1, 1}, Shape{3, 17}, Shape{5, 33}}) {
    const Tensor x = random_normal(shape, dtype(), 120);
    for (std::int64_t k = 1; k <= shape.back(); k += (k < 3 ? 1 : 7)) {
      check_topk(x, k, shape_str(shape));
    }
    check_topk(x, shape.back(), shape_str(shape));
  }
}

// Values from {0, 1, 2, 3}: every row is full of ties.
TEST_P(TopKKernel, TiesGoToTheLowerIndex) {
  std::vector<double> values = read_values(random_uniform({4, 33}, dtype(), 121, 0.0, 4.0));
  for (double& v : values) v = std::floor(v);
  const Tensor x = tensor_of({4, 33}, values, dtype());
  for (const std::int64_t k : {1, 2, 9, 17, 32, 33}) check_topk(x, k, "ties");
}

TEST_P(TopKKernel, NaNCountsAsLargest) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const Tensor x = tensor_of({2, 6},
                             {1, nan, 3, inf, nan, -2,  //
                              nan, 0, 0, -inf, 5, 5},
                             dtype());
  for (const std::int64_t k : {1, 2, 3, 6}) check_topk(x, k, "nan");
  // Spelled out for k = 3: NaNs first (lower index first), then +inf.
  const Tensor values = Tensor::empty({2, 3}, dtype());
  const Tensor indices = Tensor::empty({2, 3}, DType::i64);
  cpu_kernels().topk_rows(x, 3, values, indices);
  EXPECT_EQ(read_indices(indices), (std::vector<std::int64_t>{1, 4, 3, 0, 4, 5}));
}

// Rows long enough for every selection path of the kernel: the whole row
// (k >= n / 4), a threshold from a sample (k >= n / 16), streaming (smaller
// k); with ties, both zeros and NaNs, in f32 and f64.
TEST_P(TopKKernel, LongRowsWithTiesAndNaNTakeEveryPath) {
  constexpr std::int64_t n = 3000;
  std::vector<double> values = read_values(random_normal({3, n}, dtype(), 123));
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = std::round(values[i] * 8) / 8;  // ties, and zeros of both signs
    if (i % 997 == 5) values[i] = std::numeric_limits<double>::quiet_NaN();
  }
  const Tensor x = tensor_of({3, n}, values, dtype());
  for (const std::int64_t k : {1, 64, 190, 400, 800, 2999}) check_topk(x, k, "long rows");
}

// Outputs must be x's shape with the last extent k, values of x's dtype: the
// kernel writes rows * k of each.
TEST_P(TopKKernel, RejectsOutputsOfTheWrongShapeOrDtype) {
  const Tensor x = random_normal({4, 10}, dtype(), 122);
  const Tensor indices = Tensor::empty({4, 3}, DType::i64);
  expect_error_containing(
      [&] {
        cpu_kernels().topk_rows(x, 3, Tensor::empty({4, 2}, dtype()), indices);
      },
      {"topk_rows: values and indices must be [4, 3], got [4, 2] and [4, 3]"});
  expect_error_containing(
      [&] {
        cpu_kernels().topk_rows(x, 3, Tensor::empty({4, 3}, dtype()),
                                Tensor::empty({12}, DType::i64));
      },
      {"topk_rows: values and indices must be [4, 3]"});
  const DType other = dtype() == DType::f32 ? DType::f64 : DType::f32;
  expect_error_containing(
      [&] {
        cpu_kernels().topk_rows(x, 3, Tensor::empty({4, 3}, other), indices);
      },
      {"topk_rows"});
}

INSTANTIATE_TEST_SUITE_P(Floating, TopKKernel, floating_dtypes(), dtype_test_name);

}  // namespace
}  // namespace topkformer::testing
