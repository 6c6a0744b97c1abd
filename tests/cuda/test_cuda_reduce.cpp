// The CUDA reductions beyond their parity cases (tests/kernels/
// test_backend_parity.cpp: sum_rows, max_rows, sum_to and sum_squares on
// random inputs of every size class): empty rows, max_rows' first maximum with
// NaN and ties across threads and warps, sum_to on strided inputs and
// outputs, the same bits on every run, and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "cuda/cuda_test_util.h"
#include "kernels/reduce_reference.h"
#include "test_util.h"

namespace topkformer::testing {
namespace {

class CudaReduceKernel : public FloatingKernelTest {};

// Sums are compared to the CPU's relative to max(|want|, sqrt(terms) * sigma).
// Both sides add the same terms in double, in different orders (the CPU in
// sequence, the GPU by a fixed tree), then round to the dtype. Each side's
// error is a sum of roundings of its partial sums; for zero-mean terms of
// scale sigma those partial sums are of size sqrt(k) sigma (a random walk),
// so the difference is small relative to sqrt(terms) * sigma, the natural
// size of the result, even where the result itself cancels to near 0. The
// factor is the dtype's usual tolerance: an f32 result is rounded once to
// f32; an f64 one carries the roundings of up to ~10^7 double additions.
double sum_floor(std::int64_t terms, double sigma = 1.0) {
  return std::max(1.0, std::sqrt(static_cast<double>(terms))) * sigma;
}

std::string describe(const Shape& from, const Shape& to) {
  return shape_str(from) + " -> " + shape_str(to);
}

Shape without_last(const Shape& shape) {
  return Shape(shape.begin(), shape.end() - 1);
}

// ---- sum_rows ----

TEST_P(CudaReduceKernel, SumRowsOfEmptyRowsIsZero) {
  SKIP_WITHOUT_GPU();
  const Tensor out = on_gpu(random_normal({4}, dtype(), 66));
  gpu_kernels().sum_rows(Tensor::empty({4, 0}, dtype(), gpu), out);
  EXPECT_EQ(read_values(out.to(Device::cpu())), std::vector<double>(4, 0.0));
  // No rows: nothing to do.
  gpu_kernels().sum_rows(Tensor::empty({0, 5}, dtype(), gpu), Tensor::empty({0}, dtype(), gpu));
}

TEST_P(CudaReduceKernel, SumRowsIsDeterministic) {
  SKIP_WITHOUT_GPU();
  for (const Shape& shape : {Shape{300, 768}, Shape{100, 5000}, Shape{2, 70000}}) {
    const Tensor x = on_gpu(random_normal(shape, dtype(), 67));
    const Tensor first = Tensor::empty(without_last(shape), dtype(), gpu);
    const Tensor second = Tensor::empty(without_last(shape), dtype(), gpu);
    gpu_kernels().sum_rows(x, first);
    gpu_kernels().sum_rows(x, second);
    EXPECT_EQ(read_values(first.to(Device::cpu())), read_values(second.to(Device::cpu())))
        << shape_str(shape);
  }
}

// ---- max_rows ----

struct MaxResult {
  std::vector<double> values;
  std::vector<std::int64_t> indices;
};

MaxResult max_rows_on(kernels::Backend& kernels, const Tensor& x, Device device) {
  const Shape out_shape = without_last(x.shape());
  const Tensor values = Tensor::empty(out_shape, x.dtype(), device);
  const Tensor indices = Tensor::empty(out_shape, DType::i64, device);
  kernels.max_rows(x.to(device), values, indices);
  return {read_values(values.to(Device::cpu())), read_indices(indices.to(Device::cpu()))};
}

// The same values and the same index as the CPU, exactly (NaN matching NaN).
void expect_max_matches_cpu(const Tensor& x, const std::string& what) {
  const MaxResult want = max_rows_on(cpu_kernels(), x, Device::cpu());
  const MaxResult got = max_rows_on(gpu_kernels(), x, gpu);
  expect_all_close(got.values, want.values, 0.0, 1.0, what + " values");
  EXPECT_EQ(got.indices, want.indices) << what << " indices";
}

TEST_P(CudaReduceKernel, MaxRowsBreaksTiesToTheFirstMaximum) {
  SKIP_WITHOUT_GPU();
  const Tensor small = tensor_of({3, 5},
                                 {1, 7, 3, 7, 7,       //
                                  -2, -2, -2, -2, -2,  //
                                  0, 5, 0, 0, 5},
                                 dtype());
  const MaxResult got = max_rows_on(gpu_kernels(), small, gpu);
  EXPECT_EQ(got.values, (std::vector<double>{7, -2, 5}));
  EXPECT_EQ(got.indices, (std::vector<std::int64_t>{1, 0, 1}));

  // Long rows (a warp: 700; a block: 5000) whose equal maxima lie in
  // different lanes, warps and loop iterations: the lowest index wins.
  for (const std::int64_t n : {std::int64_t{700}, std::int64_t{5000}}) {
    const std::vector<std::vector<std::int64_t>> plantings = {
        {n - 1, n / 2, 37}, {5, 4, 300, 3}, {n - 1, n - 33}, {0, 32, 256, n - 1}};
    const auto rows = static_cast<std::int64_t>(plantings.size());
    std::vector<double> values = read_values(random_uniform({rows, n}, dtype(), 68, -1.0, 0.0));
    std::vector<std::int64_t> want(plantings.size());
    for (std::int64_t r = 0; r < rows; ++r) {
      want[r] = n;
      for (std::int64_t i : plantings[r]) {
        values[r * n + i] = 2.0;
        want[r] = std::min(want[r], i);
      }
    }
    const Tensor x = tensor_of({rows, n}, values, dtype());
    const MaxResult result = max_rows_on(gpu_kernels(), x, gpu);
    EXPECT_EQ(result.indices, want) << "n = " << n;
    EXPECT_EQ(result.values, std::vector<double>(plantings.size(), 2.0)) << "n = " << n;
    expect_max_matches_cpu(x, "planted ties, n = " + std::to_string(n));
  }
}

// As on the CPU: the first NaN wins over any number, infinities compare as
// numbers, and of -0 and +0 (equal) the first is kept.
TEST_P(CudaReduceKernel, MaxRowsHandlesNanInfinitiesAndZeros) {
  SKIP_WITHOUT_GPU();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const Tensor x = tensor_of({6, 4}, {1,    nan,  3,    nan,   //
                                      -inf, -inf, -inf, -inf,  //
                                      inf,  1,    inf,  2,     //
                                      -0.0, 0.0,  -1,   -2,    //
                                      5,    6,    7,    nan,   //
                                      nan,  inf,  1,    2},
                             dtype());
  const MaxResult got = max_rows_on(gpu_kernels(), x, gpu);
  EXPECT_EQ(got.indices, (std::vector<std::int64_t>{1, 0, 0, 0, 3, 0}));
  EXPECT_TRUE(std::isnan(got.values[0]) && std::isnan(got.values[4]) && std::isnan(got.values[5]));
  EXPECT_EQ(got.values[1], -inf);
  EXPECT_EQ(got.values[2], inf);
  EXPECT_TRUE(got.values[3] == 0.0 && std::signbit(got.values[3])) << "the first of -0 and +0";
  expect_max_matches_cpu(x, "special values");

  // NaNs in a long row, in different warps: the first one.
  for (const std::int64_t n : {std::int64_t{1000}, std::int64_t{3000}}) {
    std::vector<double> values = read_values(random_normal({2, n}, dtype(), 69));
    values[n - 100] = nan;
    values[n - 700] = nan;
    values[n + 5] = inf;
    values[n + n - 1] = nan;
    const Tensor long_rows = tensor_of({2, n}, values, dtype());
    const MaxResult result = max_rows_on(gpu_kernels(), long_rows, gpu);
    EXPECT_EQ(result.indices, (std::vector<std::int64_t>{n - 700, n - 1})) << "n = " << n;
    expect_max_matches_cpu(long_rows, "NaN in long rows, n = " + std::to_string(n));
  }
}

TEST_P(CudaReduceKernel, MaxRowsRejectsEmptyRows) {
  SKIP_WITHOUT_GPU();
  expect_error_containing(
      [&] {
        gpu_kernels().max_rows(Tensor::empty({3, 0}, dtype(), gpu),
                               Tensor::empty({3}, dtype(), gpu),
                               Tensor::empty({3}, DType::i64, gpu));
      },
      {"max_rows", "empty rows"});
}

// ---- sum_to ----

Tensor sum_to_on(kernels::Backend& kernels, const Tensor& x, const Shape& out_shape, Device device,
                 std::uint64_t seed) {
  // Garbage first: sum_to overwrites, it does not accumulate.
  const Tensor out = random_normal(out_shape, x.dtype(), seed).to(device);
  kernels.sum_to(x, out);
  return out;
}

void expect_sum_to_matches_cpu(const Tensor& x_cpu, const Tensor& x_gpu, const Shape& out_shape,
                               double rel_tol, const std::string& what, double sigma = 1.0) {
  const Tensor want = sum_to_on(cpu_kernels(), x_cpu, out_shape, Device::cpu(), 63);
  const Tensor got = sum_to_on(gpu_kernels(), x_gpu, out_shape, gpu, 64);
  const std::int64_t outputs = shape_numel(out_shape);
  const std::int64_t terms = outputs == 0 ? 0 : x_cpu.numel() / outputs;
  expect_matches_cpu(got, want, rel_tol, sum_floor(terms, sigma), what);
}

// x may be any strided view (transposed, sliced, broadcast with stride 0).
TEST_P(CudaReduceKernel, SumToReadsStridedInputs) {
  SKIP_WITHOUT_GPU();
  constexpr std::int64_t rows = 300, cols = 200;
  const double sigma = 1.0 / std::sqrt(3.0);  // uniform in [-1, 1)
  for (const Layout layout : all_layouts()) {
    const Tensor x_cpu = strided_input(layout, rows, cols, dtype(), 70, -1.0, 1.0);
    const Tensor x_gpu = strided_input(layout, rows, cols, dtype(), 70, -1.0, 1.0, gpu);
    for (const Shape& out_shape : {Shape{1, cols}, Shape{rows, 1}, Shape{1, 1}}) {
      expect_sum_to_matches_cpu(x_cpu, x_gpu, out_shape, tol(),
                                layout_name(layout) + " -> " + shape_str(out_shape), sigma);
    }
  }
}

// out may be a view: here every third element of a wider buffer, or the
// middle columns of one, whose other elements must stay untouched.
TEST_P(CudaReduceKernel, SumToWritesIntoStridedViews) {
  SKIP_WITHOUT_GPU();
  struct Case {
    Shape x_shape, buffer_shape;
    int dim;
    std::int64_t start, length, step;
  };
  const Case cases[] = {{{6, 3, 4}, {1, 3, 7}, 2, 2, 4, 1},
                        {{3000, 64}, {1, 192}, 1, 1, 64, 3},
                        {{64, 3000}, {64 * 3, 1}, 0, 2, 64, 3}};
  for (const Case& c : cases) {
    const Tensor x = random_normal(c.x_shape, dtype(), 71);
    const Tensor buffer = on_gpu(random_normal(c.buffer_shape, dtype(), 72));
    const std::vector<double> before = read_values(buffer.to(Device::cpu()));
    const Tensor out = buffer.slice(c.dim, c.start, c.start + c.step * (c.length - 1) + 1, c.step);
    gpu_kernels().sum_to(on_gpu(x), out);
    const Tensor want = Tensor::empty(out.shape(), dtype());
    cpu_kernels().sum_to(x, want);
    const std::string what = describe(c.x_shape, out.shape());
    expect_matches_cpu(out, want, tol(), sum_floor(x.numel() / out.numel()), what);
    // Everything outside the view is as it was.
    const std::vector<double> after = read_values(buffer.to(Device::cpu()));
    const Tensor marks = Tensor::zeros(c.buffer_shape, DType::f64);
    marks.slice(c.dim, c.start, c.start + c.step * (c.length - 1) + 1, c.step).fill_(1.0);
    const std::vector<double> inside = read_values(marks);
    for (std::size_t i = 0; i < after.size(); ++i) {
      if (inside[i] == 0.0) {
        EXPECT_EQ(after[i], before[i]) << what << " element " << i;
      }
    }
  }
}

TEST_P(CudaReduceKernel, SumToIsDeterministic) {
  SKIP_WITHOUT_GPU();
  const std::pair<Shape, Shape> cases[] = {
      {{3000, 768}, {1, 768}}, {{1024, 1024}, {1, 1}}, {{64, 4096}, {64, 1}}};
  for (const auto& [x_shape, out_shape] : cases) {
    const Tensor x = on_gpu(random_normal(x_shape, dtype(), 73));
    const Tensor first = sum_to_on(gpu_kernels(), x, out_shape, gpu, 74);
    const Tensor second = sum_to_on(gpu_kernels(), x, out_shape, gpu, 75);
    EXPECT_EQ(read_values(first.to(Device::cpu())), read_values(second.to(Device::cpu())))
        << describe(x_shape, out_shape);
  }
}

TEST_P(CudaReduceKernel, SumToRejectsShapesThatDoNotBroadcast) {
  SKIP_WITHOUT_GPU();
  expect_error_containing(
      [&] {
        gpu_kernels().sum_to(Tensor::empty({4, 5}, dtype(), gpu),
                             Tensor::empty({2, 5}, dtype(), gpu));
      },
      {"sum_to", "[4, 5]", "[2, 5]"});
}

// ---- sum_squares ----

TEST_P(CudaReduceKernel, SumSquaresIsDeterministic) {
  SKIP_WITHOUT_GPU();
  for (const std::int64_t n : {1000, 300001, (1 << 22) + 3}) {
    const Tensor x = random_normal({n}, dtype(), 64, 3.0);
    const Tensor got = Tensor::empty({1}, DType::f64, gpu);
    gpu_kernels().sum_squares(on_gpu(x), got);
    const Tensor again = Tensor::empty({1}, DType::f64, gpu);
    gpu_kernels().sum_squares(on_gpu(x), again);
    EXPECT_EQ(read_values(got.to(Device::cpu())), read_values(again.to(Device::cpu())))
        << "n " << n << ": not the same bits twice";
  }
  const Tensor x = on_gpu(random_normal({5}, dtype(), 65));
  expect_error_containing([&] { gpu_kernels().sum_squares(x, Tensor::empty({}, DType::f64)); },
                          {"sum_squares: operands on cuda:0 and cpu"});
}

TEST_P(CudaReduceKernel, OperandsOnAnotherDeviceAreAnError) {
  SKIP_WITHOUT_GPU();
  const Tensor x = on_gpu(random_normal({3, 4}, dtype(), 76));
  expect_error_containing([&] { gpu_kernels().sum_rows(x, Tensor::empty({3}, dtype())); },
                          {"sum_rows", "cuda:0", "cpu"});
  expect_error_containing(
      [&] {
        gpu_kernels().max_rows(x, Tensor::empty({3}, dtype(), gpu), Tensor::empty({3}, DType::i64));
      },
      {"max_rows", "cuda:0", "cpu"});
  expect_error_containing(
      [&] {
        gpu_kernels().sum_to(x, Tensor::empty({1, 4}, dtype()));
      },
      {"sum_to", "cuda:0", "cpu"});
}

INSTANTIATE_TEST_SUITE_P(Cuda, CudaReduceKernel, floating_dtypes(), dtype_test_name);

}  // namespace
}  // namespace topkformer::testing
