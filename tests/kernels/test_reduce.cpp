// Reductions against plain loops in double: sum_rows, max_rows (value and first
// index of the maximum), sum_to over several broadcast patterns and
// sum_squares (whose order must not depend on the threads).
#include <algorithm>
#include <string>
#include <vector>

#include "kernels/reduce_reference.h"
#include "kernels/reference.h"
#include "test_util.h"
#include "topkformer/core/runtime.h"

namespace topkformer::testing {
namespace {

class ReduceKernel : public FloatingKernelTest {};

const Shape row_shapes[] = {{1, 1}, {3, 17}, {33, 1}, {2, 3, 5}, {4, 33}};

TEST_P(ReduceKernel, SumRowsMatchesLoop) {
  for (const Shape& shape : row_shapes) {
    const Tensor x = random_normal(shape, dtype(), 60);
    const std::int64_t n = shape.back(), rows = x.numel() / n;
    const std::vector<double> xv = read_values(x);
    std::vector<double> want(rows, 0.0);
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t j = 0; j < n; ++j) want[r] += xv[r * n + j];
    }
    const Tensor out = Tensor::empty(Shape(shape.begin(), shape.end() - 1), dtype());
    cpu_kernels().sum_rows(x, out);
    expect_all_close(out, want, tol(), 1.0, shape_str(shape));
  }
}

TEST_P(ReduceKernel, SumRowsOfEmptyRowsIsZero) {
  const Tensor out = random_normal({4}, dtype(), 66);
  cpu_kernels().sum_rows(Tensor::empty({4, 0}, dtype()), out);
  EXPECT_EQ(read_values(out), std::vector<double>(4, 0.0));
}

TEST_P(ReduceKernel, MaxRowsFindsValueAndIndex) {
  for (const Shape& shape : row_shapes) {
    const Tensor x = random_normal(shape, dtype(), 61);
    const std::int64_t n = shape.back(), rows = x.numel() / n;
    const std::vector<double> xv = read_values(x);
    std::vector<double> want_values(rows);
    std::vector<std::int64_t> want_indices(rows);
    for (std::int64_t r = 0; r < rows; ++r) {
      const auto row = xv.begin() + r * n;
      const auto best = std::max_element(row, row + n);  // the first maximum
      want_values[r] = *best;
      want_indices[r] = best - row;
    }
    const Shape out_shape(shape.begin(), shape.end() - 1);
    const Tensor values = Tensor::empty(out_shape, dtype());
    const Tensor indices = Tensor::empty(out_shape, DType::i64);
    cpu_kernels().max_rows(x, values, indices);
    EXPECT_EQ(read_values(values), want_values) << shape_str(shape);
    EXPECT_EQ(read_indices(indices), want_indices) << shape_str(shape);
  }
}

TEST_P(ReduceKernel, MaxRowsBreaksTiesToTheFirstMaximum) {
  const Tensor x = tensor_of({3, 5},
                             {1, 7, 3, 7, 7,       //
                              -2, -2, -2, -2, -2,  //
                              0, 5, 0, 0, 5},
                             dtype());
  const Tensor values = Tensor::empty({3}, dtype());
  const Tensor indices = Tensor::empty({3}, DType::i64);
  cpu_kernels().max_rows(x, values, indices);
  EXPECT_EQ(read_values(values), (std::vector<double>{7, -2, 5}));
  EXPECT_EQ(read_indices(indices), (std::vector<std::int64_t>{1, 0, 1}));
}

// out[o] = sum of x over the elements that broadcast from o.
std::vector<double> reference_sum_to(const Tensor& x, const Shape& out_shape) {
  const std::vector<double> xv = read_values(x);
  std::vector<double> out(static_cast<std::size_t>(shape_numel(out_shape)), 0.0);
  const Strides out_strides = contiguous_strides(out_shape);
  for (std::int64_t e = 0; e < x.numel(); ++e) {
    std::int64_t rest = e, position = 0;
    for (int d = x.dim() - 1; d >= 0; --d) {
      const std::int64_t i = rest % x.size(d);
      rest /= x.size(d);
      if (out_shape[d] != 1) position += i * out_strides[d];
    }
    out[position] += xv[e];
  }
  return out;
}

// The shared patterns, then leading dimensions only (bias gradients), wide
// enough for several column blocks and threads.
const std::vector<std::pair<Shape, Shape>> broadcast_patterns =
    sum_to_broadcast_patterns({{{300, 200}, {1, 200}}, {{3, 100, 70}, {1, 1, 70}}});

TEST_P(ReduceKernel, SumToMatchesLoopForBroadcastPatterns) {
  for (const auto& [x_shape, out_shape] : broadcast_patterns) {
    const Tensor x = random_normal(x_shape, dtype(), 62);
    const Tensor out = random_normal(out_shape, dtype(), 63);  // overwritten, not accumulated
    cpu_kernels().sum_to(x, out);
    expect_all_close(out, reference_sum_to(x, out_shape), tol(), 1.0,
                     shape_str(x_shape) + " -> " + shape_str(out_shape));
  }
}

// out may be a view: here the middle columns of a wider buffer, whose other
// columns must stay untouched.
TEST_P(ReduceKernel, SumToWritesIntoAStridedView) {
  const Tensor x = random_normal({6, 1, 4}, dtype(), 64).expand({6, 3, 4}).contiguous();
  const Tensor buffer = random_normal({1, 3, 7}, dtype(), 65);
  const Tensor out = buffer.narrow(2, 2, 4);
  const Tensor outside = buffer.narrow(2, 0, 2), tail = buffer.narrow(2, 6, 1);
  const std::vector<double> outside_before = read_values(outside), tail_before = read_values(tail);
  cpu_kernels().sum_to(x, out);
  expect_all_close(out, reference_sum_to(x, out.shape()), tol());
  EXPECT_EQ(read_values(outside), outside_before);
  EXPECT_EQ(read_values(tail), tail_before);
}

// Sizes within one block of the CPU's (2^16 elements) and across several.
const std::int64_t square_sizes[] = {0, 1, 17, 65536, 65537, 300001};

TEST_P(ReduceKernel, SumSquaresMatchesALoopInDouble) {
  for (const std::int64_t n : square_sizes) {
    const Tensor x = random_normal({n}, dtype(), 61, 3.0);
    double want = 0.0;
    for (const double value : read_values(x)) want += value * value;
    const Tensor out = Tensor::empty({}, DType::f64);
    cpu_kernels().sum_squares(x, out);
    // Both in double, in different orders: rounding of up to n additions.
    EXPECT_NEAR(out.item(), want, 1e-13 * std::max(1.0, want)) << "n " << n;
  }
  // A scalar, a rank-3 tensor and a one-element view as the result.
  const Tensor x = tensor_of({2, 1, 2}, {1.0, -2.0, 3.0, 0.5}, dtype());
  const Tensor out = Tensor::zeros({3}, DType::f64);
  cpu_kernels().sum_squares(x, out.narrow(0, 1, 1));
  EXPECT_EQ(read_values(out), (std::vector<double>{0.0, 14.25, 0.0}));
}

TEST_P(ReduceKernel, SumSquaresIsTheSameBitsForAnyThreadCount) {
  const Tensor x = random_normal({300001}, dtype(), 62);
  const int threads = num_threads();
  const Tensor one = Tensor::empty({}, DType::f64), many = Tensor::empty({}, DType::f64);
  set_num_threads(1);
  cpu_kernels().sum_squares(x, one);
  set_num_threads(std::max(threads, 3));
  cpu_kernels().sum_squares(x, many);
  set_num_threads(threads);
  EXPECT_EQ(one.item(), many.item());
}

TEST_P(ReduceKernel, SumSquaresChecksItsOperands) {
  const Tensor x = random_normal({3, 4}, dtype(), 63);
  expect_error_containing(
      [&] {
        cpu_kernels().sum_squares(x,
                                  Tensor::empty({}, dtype() == DType::f64 ? DType::f32 : dtype()));
      },
      {"sum_squares: expected one f64 element"});
  expect_error_containing([&] { cpu_kernels().sum_squares(x, Tensor::empty({2}, DType::f64)); },
                          {"sum_squares: expected one f64 element", "[2]"});
  expect_error_containing(
      [&] { cpu_kernels().sum_squares(x.transpose(0, 1), Tensor::empty({}, DType::f64)); },
      {"sum_squares: input must be contiguous"});
}

INSTANTIATE_TEST_SUITE_P(Floating, ReduceKernel, floating_dtypes(), dtype_test_name);

}  // namespace
}  // namespace topkformer::testing
