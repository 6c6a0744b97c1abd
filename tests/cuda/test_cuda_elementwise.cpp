// The CUDA elementwise kernels against their CPU twins on the same inputs:
// unary and its backward, binary and affine on every input layout (dense,
// transposed, sliced, broadcast), views that do not coalesce, more
// dimensions than one launch takes, offsets past 2^31; fill on strided views
// of every dtype, arange, the backend's copy, and the operand errors.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cuda/cuda_test_util.h"
#include "kernels/binary_reference.h"
#include "kernels/unary_reference.h"
#include "test_util.h"
#include "topkformer/core/allocator.h"

namespace topkformer::testing {
namespace {

using kernels::BinaryOp;
using kernels::UnaryOp;

bool is_gelu(UnaryOp op) {
  return op == UnaryOp::gelu_tanh || op == UnaryOp::gelu_erf;
}

// Both sides evaluate the same formula (kernels/activations.h) with their
// own exp, log, tanh and erf, which are within 2 ulp: a few ulp of the
// result, except where gelu(x) = x/2 (1 + tanh(..)) cancels for negative x
// (gelu(-4) ~ -1e-4 from terms of size 2): there the error is a few ulp of
// those terms, hence an absolute floor of 1. The other ops stay relative.
double unary_floor(UnaryOp op) {
  return is_gelu(op) ? 1.0 : 1e-6;
}

// Shapes that are not multiples of a block or a warp, one element, and rows
// longer than a block.
const std::pair<std::int64_t, std::int64_t> shapes[] = {{1, 1}, {3, 17}, {33, 5}, {7, 5000}};

class CudaElementwiseKernel : public FloatingKernelTest {};

TEST_P(CudaElementwiseKernel, UnaryMatchesCpuOnEveryLayout) {
  SKIP_WITHOUT_GPU();
  for (const UnaryOp op : all_unary_ops) {
    const double low = needs_positive_input(op) ? 0.01 : -4.0;
    for (const Layout layout : all_layouts()) {
      for (const auto& [rows, cols] : shapes) {
        const Tensor x = strided_input(layout, rows, cols, dtype(), 40, low, 4.0);
        const Tensor want = Tensor::empty({rows, cols}, dtype());
        cpu_kernels().unary(op, x, want);
        const Tensor got = Tensor::empty({rows, cols}, dtype(), gpu);
        gpu_kernels().unary(op, strided_input(layout, rows, cols, dtype(), 40, low, 4.0, gpu), got);
        expect_matches_cpu(got, want, tol(), unary_floor(op),
                           op_name(op) + " on " + layout_name(layout) + " " + shape_str(x.shape()));
      }
    }
  }
}

// The backward's inputs x (for tanh: y in (-1, 1)) and dy in two layouts
// each. relu's derivative at x = 0 is 0 on both sides (x > 0 is false).
// Floor 1: 1 - y^2 and the gelu derivatives cancel like gelu itself.
TEST_P(CudaElementwiseKernel, UnaryBackwardMatchesCpuOnEveryLayoutPair) {
  SKIP_WITHOUT_GPU();
  for (const UnaryOp op : unary_backward_ops) {
    const double low = op == UnaryOp::tanh ? -0.999 : -4.0;
    const double high = op == UnaryOp::tanh ? 0.999 : 4.0;
    for (const Layout x_layout : all_layouts()) {
      for (const Layout dy_layout :
           {Layout::contiguous, Layout::transposed, Layout::row_broadcast}) {
        for (const auto& [rows, cols] : shapes) {
          const auto x = [&](Device device) {
            return strided_input(x_layout, rows, cols, dtype(), 41, low, high, device);
          };
          const auto dy = [&](Device device) {
            return strided_input(dy_layout, rows, cols, dtype(), 42, -2.0, 2.0, device);
          };
          const Tensor want = Tensor::empty({rows, cols}, dtype());
          cpu_kernels().unary_backward(op, x(Device::cpu()), dy(Device::cpu()), want);
          const Tensor got = Tensor::empty({rows, cols}, dtype(), gpu);
          gpu_kernels().unary_backward(op, x(gpu), dy(gpu), got);
          expect_matches_cpu(got, want, tol(), 1.0,
                             op_name(op) + "' on " + layout_name(x_layout) + ", " +
                                 layout_name(dy_layout) + " " + std::to_string(rows) + "x" +
                                 std::to_string(cols));
        }
      }
    }
  }
}

// One correctly rounded operation per element on both devices: exact.
TEST_P(CudaElementwiseKernel, BinaryIsExactlyTheCpusOnEveryLayoutPair) {
  SKIP_WITHOUT_GPU();
  for (const BinaryOp op : all_binary_ops) {
    for (const Layout layout_a : all_layouts()) {
      for (const Layout layout_b : all_layouts()) {
        for (const auto& [rows, cols] : {std::pair<std::int64_t, std::int64_t>{3, 17}, {9, 700}}) {
          const auto a = [&](Device device) {
            return strided_input(layout_a, rows, cols, dtype(), 50, -3.0, 3.0, device);
          };
          // b away from 0: division stays well conditioned.
          const auto b = [&](Device device) {
            return strided_input(layout_b, rows, cols, dtype(), 51, 0.5, 2.0, device);
          };
          const Tensor want = Tensor::empty({rows, cols}, dtype());
          cpu_kernels().binary(op, a(Device::cpu()), b(Device::cpu()), want);
          const Tensor got = Tensor::empty({rows, cols}, dtype(), gpu);
          gpu_kernels().binary(op, a(gpu), b(gpu), got);
          expect_matches_cpu(got, want, 0.0, 1.0,
                             op_name(op) + "(" + layout_name(layout_a) + ", " +
                                 layout_name(layout_b) + ") " + std::to_string(rows) + "x" +
                                 std::to_string(cols));
        }
      }
    }
  }
}

// Dimensions that cannot be coalesced: a rank-3 permutation against a
// stride-0 expansion, and a rank-4 mix of both into a strided output.
TEST_P(CudaElementwiseKernel, ViewsThatDoNotCoalesce) {
  SKIP_WITHOUT_GPU();
  const Tensor a = random_normal({5, 3, 4}, dtype(), 52);
  const Tensor b = random_normal({3, 1, 5}, dtype(), 53);
  const Tensor want = Tensor::empty({3, 4, 5}, dtype());
  cpu_kernels().binary(BinaryOp::mul, a.permute({1, 2, 0}), b.expand({3, 4, 5}), want);
  const Tensor got = Tensor::empty({3, 4, 5}, dtype(), gpu);
  gpu_kernels().binary(BinaryOp::mul, on_gpu(a).permute({1, 2, 0}), on_gpu(b).expand({3, 4, 5}),
                       got);
  expect_matches_cpu(got, want, 0.0);

  const Tensor c = random_normal({6, 1, 7, 2}, dtype(), 54);
  const Tensor d = random_normal({2, 7, 9, 6}, dtype(), 55);
  const Shape shape{6, 9, 7, 2};
  const auto c_view = [&](const Tensor& t) { return t.expand(shape); };
  const auto d_view = [&](const Tensor& t) { return t.permute({3, 2, 1, 0}); };
  // The output a transposed view of a padded buffer.
  const auto out_view = [&](const Tensor& t) { return t.narrow(3, 1, 6).permute({3, 2, 1, 0}); };
  const Tensor want_buffer = Tensor::zeros({2, 7, 9, 8}, dtype());
  cpu_kernels().binary(BinaryOp::sub, c_view(c), d_view(d), out_view(want_buffer));
  const Tensor got_buffer = Tensor::zeros({2, 7, 9, 8}, dtype(), gpu);
  gpu_kernels().binary(BinaryOp::sub, c_view(on_gpu(c)), d_view(on_gpu(d)), out_view(got_buffer));
  expect_matches_cpu(got_buffer, want_buffer, 0.0, 1.0, "strided output");
}

// 18 dimensions that do not merge: more than one launch takes, so the
// kernel runs on slices.
TEST_P(CudaElementwiseKernel, ViewsOfManyDimensions) {
  SKIP_WITHOUT_GPU();
  const int rank = 18;
  const Shape shape(rank, 2);
  std::vector<int> reversed(rank);
  for (int d = 0; d < rank; ++d) reversed[d] = rank - 1 - d;
  const Tensor x = random_normal(shape, dtype(), 56);
  const Tensor y = random_normal(shape, dtype(), 57);
  const Tensor want = Tensor::empty(shape, dtype());
  cpu_kernels().binary(BinaryOp::add, x.permute(reversed), y, want);
  const Tensor got = Tensor::empty(shape, dtype(), gpu);
  gpu_kernels().binary(BinaryOp::add, on_gpu(x).permute(reversed), on_gpu(y), got);
  expect_matches_cpu(got, want, 0.0);
  cpu_kernels().unary(UnaryOp::tanh, x.permute(reversed), want);
  gpu_kernels().unary(UnaryOp::tanh, on_gpu(x).permute(reversed), got);
  expect_matches_cpu(got, want, tol(), 1e-6, "tanh");
}

// More elements than the grid has threads (65536 blocks of 256): the
// grid-stride loops cover the rest, dense and strided.
TEST_P(CudaElementwiseKernel, MoreElementsThanThreads) {
  SKIP_WITHOUT_GPU();
  const std::int64_t rows = 4099, cols = 4097;  // 16.8M > 2^24 threads
  const Tensor a = random_uniform({rows, cols}, dtype(), 58, -1.0, 1.0);
  const Tensor b = random_uniform({1, cols}, dtype(), 59, -1.0, 1.0);
  const Tensor want = Tensor::empty({rows, cols}, dtype());
  cpu_kernels().binary(BinaryOp::add, a, a, want);
  const Tensor a_gpu = on_gpu(a);
  const Tensor got = Tensor::empty({rows, cols}, dtype(), gpu);
  gpu_kernels().binary(BinaryOp::add, a_gpu, a_gpu, got);
  expect_matches_cpu(got, want, 0.0, 1.0, "dense");
  cpu_kernels().binary(BinaryOp::mul, a, b.expand({rows, cols}), want);
  gpu_kernels().binary(BinaryOp::mul, a_gpu, on_gpu(b).expand({rows, cols}), got);
  expect_matches_cpu(got, want, 0.0, 1.0, "broadcast");
}

// Scale and shift: both sides fuse scale * v + shift into one multiply-add
// where they can; the tolerance allows for one that does not.
TEST_P(CudaElementwiseKernel, AffineMatchesCpuOnEveryLayoutAndInPlace) {
  SKIP_WITHOUT_GPU();
  for (const Layout layout : all_layouts()) {
    for (const auto& [rows, cols] : shapes) {
      const Tensor want = Tensor::empty({rows, cols}, dtype());
      cpu_kernels().affine(strided_input(layout, rows, cols, dtype(), 60, -2.0, 2.0), -1.5, 0.25,
                           want);
      const Tensor got = Tensor::empty({rows, cols}, dtype(), gpu);
      gpu_kernels().affine(strided_input(layout, rows, cols, dtype(), 60, -2.0, 2.0, gpu), -1.5,
                           0.25, got);
      expect_matches_cpu(got, want, tol(), 1.0, layout_name(layout));
    }
  }
  // gemm relies on affine(c, beta, 0, c).
  const Tensor x = random_normal({33, 3}, dtype(), 61);
  const Tensor x_gpu = on_gpu(x);
  cpu_kernels().affine(x, 3.0, -1.0, x);
  gpu_kernels().affine(x_gpu, 3.0, -1.0, x_gpu);
  expect_matches_cpu(x_gpu, x, tol());
}

TEST_P(CudaElementwiseKernel, EmptyTensorsAreANoOp) {
  SKIP_WITHOUT_GPU();
  const Tensor x = Tensor::empty({0, 5}, dtype(), gpu);
  const Tensor out = Tensor::empty({0, 5}, dtype(), gpu);
  run_and_synchronize([&] {
    gpu_kernels().unary(UnaryOp::exp, x, out);
    gpu_kernels().unary_backward(UnaryOp::relu, x, x, out);
    gpu_kernels().binary(BinaryOp::add, x, x, out);
    gpu_kernels().affine(x, 2.0, 1.0, out);
    gpu_kernels().fill(out, 1.0);
  });
}

INSTANTIATE_TEST_SUITE_P(Cuda, CudaElementwiseKernel, floating_dtypes(), dtype_test_name);

// A view whose offsets pass 2^31 elements (8 GiB of f32) takes the kernels'
// 64-bit index path, for reading (unary, binary) and for writing (fill).
TEST(CudaElementwiseLargeOffsets, ViewsSpanningMoreThan2Pow31ElementsUse64BitOffsets) {
  SKIP_WITHOUT_GPU();
  const std::int64_t step = std::int64_t{1} << 30;
  {
    const Tensor big = Tensor::empty({2 * step + 64}, DType::f32, gpu);
    const Tensor sparse = big.slice(0, 0, 2 * step + 1, step);  // offsets 0, 2^30, 2^31
    ASSERT_EQ(sparse.shape(), Shape({3}));
    gpu_kernels().fill(sparse, 2.5);
    Tensor(sparse.narrow(0, 2, 1)).copy_(Tensor::full({1}, -4.0));
    EXPECT_EQ(sparse.to_vector<float>(), std::vector<float>({2.5f, 2.5f, -4.0f}));
    const Tensor out = Tensor::empty({3}, DType::f32, gpu);
    gpu_kernels().unary(UnaryOp::neg, sparse, out);
    EXPECT_EQ(out.to_vector<float>(), std::vector<float>({-2.5f, -2.5f, 4.0f}));
    gpu_kernels().binary(BinaryOp::mul, sparse, out, out);
    EXPECT_EQ(out.to_vector<float>(), std::vector<float>({-6.25f, -6.25f, -16.0f}));
  }
  allocator_for(gpu).empty_cache();
}

// ---- fill, arange, copy ----

const DType all_dtypes[] = {DType::f32, DType::f64, DType::i32, DType::i64, DType::u8};

// The views of the CPU's fill test; storage outside the view is untouched.
TEST(CudaFillKernel, StridedViewsOfEveryDtypeMatchCpu) {
  SKIP_WITHOUT_GPU();
  const auto views = [](const Tensor& base) {
    return std::vector<Tensor>{base.slice(0, 1, 6, 2).slice(1, 0, 10, 3),  // strides (20, 3)
                               base.narrow(1, 2, 5).transpose(0, 1),       // strides (1, 10)
                               base.select(1, 9),                          // a column
                               base.narrow(0, 2, 3),                       // contiguous rows
                               base.select(0, 4).select(0, 3),             // 0-d
                               base.narrow(0, 0, 0)};                      // empty
  };
  for (const DType dtype : all_dtypes) {
    const Tensor want = tensor_of({6, 10}, std::vector<double>(60, 7.0), dtype);
    const Tensor got = on_gpu(want);
    const std::vector<Tensor> want_views = views(want), got_views = views(got);
    for (std::size_t k = 0; k < want_views.size(); ++k) {
      const double value = dtype == DType::u8 ? 200.0 : -40.0 - double(k);
      cpu_kernels().fill(want_views[k], value);
      gpu_kernels().fill(got_views[k], value);
      expect_matches_cpu(got, want, 0.0, 1.0,
                         std::string(dtype_name(dtype)) + " view " + std::to_string(k));
    }
  }
  const Tensor fractional = Tensor::zeros({4, 9}, DType::f64, gpu);
  gpu_kernels().fill(fractional.slice(1, 1, 9, 2), -1.25);
  const std::vector<double> values = fractional.to_vector<double>();
  for (std::int64_t i = 0; i < 36; ++i) EXPECT_EQ(values[i], i % 9 % 2 == 1 ? -1.25 : 0.0) << i;
}

// Element i is start + i * step rounded once, as on the CPU: bitwise equal.
TEST(CudaArangeKernel, EqualsCpuInEveryDtype) {
  SKIP_WITHOUT_GPU();
  struct Case {
    DType dtype;
    double start, step;
  };
  const Case cases[] = {{DType::f32, -3.0, 0.1}, {DType::f64, -3.0, 0.1}, {DType::f64, 1e6, -7.5},
                        {DType::f32, 0.5, 1e-3}, {DType::i32, 5.0, 3.0},  {DType::i64, -40.0, 2.0},
                        {DType::u8, 0.0, 1.0}};
  for (const Case& c : cases) {
    for (const std::int64_t n : {0, 1, 17, 256, 1000, 100003}) {
      const std::int64_t count = c.dtype == DType::u8 ? std::min<std::int64_t>(n, 256) : n;
      const Tensor want = Tensor::empty({count}, c.dtype);
      cpu_kernels().arange(want, c.start, c.step);
      const Tensor got = Tensor::empty({count}, c.dtype, gpu);
      gpu_kernels().arange(got, c.start, c.step);
      expect_matches_cpu(got, want, 0.0, 1.0,
                         std::string(dtype_name(c.dtype)) + " n " + std::to_string(count));
    }
  }
}

// The backend's copy is cuda::copy: strided views on both sides, conversion,
// and from the host.
TEST(CudaCopyKernel, StridedViewsWithConversionAndFromTheHost) {
  SKIP_WITHOUT_GPU();
  const Tensor source = random_normal({5, 7}, DType::f64, 62);
  const Tensor target = Tensor::zeros({7, 9}, DType::f32, gpu);
  gpu_kernels().copy(on_gpu(source).transpose(0, 1), target.narrow(1, 1, 5));
  const Tensor want = Tensor::zeros({7, 9}, DType::f32);
  cpu_kernels().copy(source.transpose(0, 1), want.narrow(1, 1, 5));
  expect_matches_cpu(target, want, 0.0);
  const Tensor from_host = Tensor::empty({5, 7}, DType::f64, gpu);
  gpu_kernels().copy(source, from_host);
  expect_matches_cpu(from_host, source, 0.0);
}

// ---- errors ----

TEST(CudaElementwiseErrors, OperandsOnAnotherDeviceShapesAndOps) {
  SKIP_WITHOUT_GPU();
  const Tensor on_host = Tensor::ones({2, 3});
  const Tensor x = on_gpu(on_host);
  const Tensor out = Tensor::empty({2, 3}, DType::f32, gpu);
  expect_error_containing([&] { gpu_kernels().unary(UnaryOp::exp, on_host, out); },
                          {"unary", "cuda:0", "cpu"});
  expect_error_containing([&] { gpu_kernels().binary(BinaryOp::add, x, on_host, out); },
                          {"binary", "cuda:0", "cpu"});
  expect_error_containing([&] { gpu_kernels().affine(x, 1.0, 0.0, on_host); },
                          {"affine", "expected a CUDA tensor"});
  expect_error_containing([&] { gpu_kernels().fill(on_host, 1.0); },
                          {"fill", "expected a CUDA tensor"});
  expect_error_containing(
      [&] {
        gpu_kernels().unary(UnaryOp::exp, Tensor::empty({3, 2}, DType::f32, gpu), out);
      },
      {"elementwise", "[3, 2]", "[2, 3]"});
  expect_error_containing(
      [&] {
        gpu_kernels().unary(UnaryOp::exp, Tensor::empty({2, 3}, DType::f64, gpu), out);
      },
      {"elementwise", "dtype mismatch"});
  expect_error_containing([&] { gpu_kernels().unary_backward(UnaryOp::exp, x, x, out); },
                          {"unary_backward", "no derivative kernel"});
  expect_error_containing(
      [&] {
        const Tensor indices = Tensor::zeros({2, 3}, DType::i64, gpu);
        gpu_kernels().unary(UnaryOp::neg, indices, indices);
      },
      {"unary", "f32 or f64"});
}

}  // namespace
}  // namespace topkformer::testing
