// CUDA softmax / log-softmax, their backward pass and fill_masked beyond their
// parity cases (every mask of mask_edge_cases() against the CPU:
// tests/kernels/test_backend_parity.cpp): every row length from 1 to 50000
// entries (the warp- and block-per-row kernels), more rows than the grid,
// fully masked rows, no gradient for masked entries, the same bits on every
// run, empty tensors and errors.
//
// The CPU twin runs in f64 on the same values (an f32 input widens exactly),
// so an f32 result is checked against the exact answer rather than against a
// second f32 rounding of it.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cuda/cuda_test_util.h"
#include "kernels/mask_reference.h"
#include "test_util.h"

namespace topkformer::testing {
namespace {

using kernels::RowMask;

constexpr double infinity = std::numeric_limits<double>::infinity();

// The case's mask with its key lengths on the GPU or the CPU (the kernels take either).
RowMask make_mask(const MaskCase& c, bool lengths_on_gpu) {
  RowMask mask = make_mask(c);
  if (lengths_on_gpu && mask.key_lengths.defined()) mask.key_lengths = on_gpu(mask.key_lengths);
  return mask;
}

// Scores of two kinds: normal ones and large magnitudes, where exp overflows
// f32 unless the row maximum is subtracted.
Tensor make_scores(const Shape& shape, DType dtype, bool large, std::uint64_t seed) {
  return large ? random_uniform(shape, dtype, seed, -80.0, 80.0)
               : random_normal(shape, dtype, seed, 3.0);
}

// The tolerance for f32 grows with the logits: exp(x - max) carries a relative
// error of |x - max| * 2^-24 from rounding its argument, up to 5e-6 for
// arguments near -87 (below which f32 underflows), and the log-probability
// x - lse is a difference of numbers of the logits' size.
double forward_tolerance(DType dtype, bool large) {
  if (dtype == DType::f64) return 1e-12;
  return large ? 3e-5 : 1e-5;
}

// The CPU twin in f64.
Tensor cpu_softmax(const Tensor& x, const RowMask& mask, bool log) {
  const Tensor input = x.to(Device::cpu()).to(DType::f64);
  RowMask cpu_mask = mask;
  if (mask.key_lengths.defined()) cpu_mask.key_lengths = mask.key_lengths.to(Device::cpu());
  const Tensor out = Tensor::empty(input.shape(), DType::f64);
  cpu_kernels().softmax(input, cpu_mask, log, out);
  return out;
}

// Probabilities are compared relatively (the floor only covers f32's
// underflow to subnormals); log-probabilities relative to the logits' size.
void expect_softmax_matches_cpu(const Tensor& got, const Tensor& want, bool log, double rel_tol,
                                double logit_scale, const std::string& what) {
  expect_matches_cpu(got, want, rel_tol, log ? std::max(1.0, logit_scale) : 1e-30, what);
}

class CudaSoftmax : public FloatingKernelTest {};

// Every row length around the warp size, the block size and the switch from
// a warp to a block per row (1024), up to a 50000-word vocabulary.
TEST_P(CudaSoftmax, RowLengthsFromOneToFiftyThousand) {
  SKIP_WITHOUT_GPU();
  for (const std::int64_t n :
       {1, 2, 31, 32, 33, 255, 256, 257, 1000, 1023, 1024, 1025, 1500, 4999, 5000, 50000}) {
    const MaskCase unmasked{"n=" + std::to_string(n), {2, 3, n}};
    const MaskCase padded{"n=" + std::to_string(n) + " lengths",
                          {2, 3, n},
                          true,
                          n - 3,
                          {double(n), double(n / 2 + 1)}};
    for (const MaskCase& c : {unmasked, padded}) {
      const Tensor x = on_gpu(make_scores(c.shape, dtype(), true, 501));
      for (const bool log : {false, true}) {
        const RowMask mask = make_mask(c, true);
        const Tensor out = Tensor::empty(c.shape, dtype(), gpu);
        gpu_kernels().softmax(x, mask, log, out);
        expect_softmax_matches_cpu(out, cpu_softmax(x, mask, log), log,
                                   forward_tolerance(dtype(), true), 80.0,
                                   c.name + (log ? " log" : ""));
      }
    }
  }
}

// More rows than one launch has warps (65536 blocks of 8): the grid strides.
TEST_P(CudaSoftmax, MoreRowsThanTheGridHasWarps) {
  SKIP_WITHOUT_GPU();
  const Tensor x = on_gpu(make_scores({3, 200000, 3}, dtype(), false, 502));
  RowMask mask;
  mask.causal = true;  // query 0 of each item sees one key, the others more
  const Tensor out = Tensor::empty(x.shape(), dtype(), gpu);
  gpu_kernels().softmax(x, mask, false, out);
  expect_softmax_matches_cpu(out, cpu_softmax(x, mask, false), false,
                             forward_tolerance(dtype(), false), 1.0, "600000 rows");
}

// With every key masked, or every valid score -inf, a row is all 0 (all -inf
// for log), never NaN.
TEST_P(CudaSoftmax, FullyMaskedRowsAreZeroOrMinusInfinity) {
  SKIP_WITHOUT_GPU();
  for (const std::int64_t n : {4, 3000}) {
    const MaskCase c{"all_padding", {3, 2, n}, false, 0, {0, double(n), 2}};
    std::vector<double> values = read_values(random_normal(c.shape, dtype(), 503));
    for (std::int64_t j = 0; j < n; ++j) values[std::size_t(2 * n + j)] = -infinity;  // item 1
    const Tensor x = on_gpu(tensor_of(c.shape, values, dtype()));
    for (const bool log : {false, true}) {
      const Tensor out = Tensor::empty(c.shape, dtype(), gpu);
      gpu_kernels().softmax(x, make_mask(c, false), log, out);
      const std::vector<double> y = read_values(out.to(Device::cpu()));
      for (std::int64_t e = 0; e < 3 * n; ++e) {  // item 0 and the first row of item 1
        ASSERT_EQ(y[std::size_t(e)], log ? -infinity : 0.0)
            << "n " << n << " element " << e << (log ? " log" : "");
      }
      expect_softmax_matches_cpu(out, cpu_softmax(x, make_mask(c, false), log), log,
                                 forward_tolerance(dtype(), false), 3.0, "all_padding");
    }
  }
}

TEST_P(CudaSoftmax, SameBitsEveryRun) {
  SKIP_WITHOUT_GPU();
  for (const std::int64_t n : {1000, 50000}) {
    const Tensor x = on_gpu(make_scores({4, n}, dtype(), true, 504));
    const Tensor first = Tensor::empty(x.shape(), dtype(), gpu);
    const Tensor second = Tensor::empty(x.shape(), dtype(), gpu);
    gpu_kernels().softmax(x, {}, false, first);
    gpu_kernels().softmax(x, {}, false, second);
    EXPECT_EQ(read_values(first.to(Device::cpu())), read_values(second.to(Device::cpu())))
        << "n " << n;
  }
}

// The backward takes the forward output, masked entries included (0, or -inf
// for log-softmax), as in training, and gives those entries exactly 0.
TEST_P(CudaSoftmax, BackwardGivesMaskedEntriesNoGradient) {
  SKIP_WITHOUT_GPU();
  for (const MaskCase& c : mask_edge_cases()) {
    for (const bool log : {false, true}) {
      const Tensor y = Tensor::empty(c.shape, dtype(), gpu);
      gpu_kernels().softmax(on_gpu(random_normal(c.shape, dtype(), 505, 2.0)), make_mask(c, true),
                            log, y);
      const Tensor dy = on_gpu(random_normal(c.shape, dtype(), 506));
      const Tensor dx = on_gpu(random_normal(c.shape, dtype(), 507));  // overwritten
      gpu_kernels().softmax_backward(y, dy, log, dx);
      const std::vector<double> y_values = read_values(y.to(Device::cpu()));
      const std::vector<double> dx_values = read_values(dx.to(Device::cpu()));
      for (std::size_t e = 0; e < y_values.size(); ++e) {
        if (y_values[e] == (log ? -infinity : 0.0)) {
          ASSERT_EQ(dx_values[e], 0.0) << c.name << " element " << e;
        }
      }
    }
  }
}

TEST_P(CudaSoftmax, EmptyMaskLeavesTensorUnchanged) {
  SKIP_WITHOUT_GPU();
  const Tensor x = on_gpu(random_normal({2, 3, 4, 5}, dtype(), 509));
  const std::vector<double> before = read_values(x.to(Device::cpu()));
  RowMask offset_only;
  offset_only.causal_offset = -3;  // an offset alone makes no mask
  for (const RowMask& mask : {RowMask{}, offset_only}) {
    gpu_kernels().fill_masked(x, mask, -1.0);
    EXPECT_EQ(read_values(x.to(Device::cpu())), before);
  }
}

TEST_P(CudaSoftmax, EmptyTensors) {
  SKIP_WITHOUT_GPU();
  for (const Shape& shape : {Shape{0, 5}, Shape{3, 0}, Shape{0, 2, 0}}) {
    const Tensor x = Tensor::empty(shape, dtype(), gpu);
    const Tensor out = Tensor::empty(shape, dtype(), gpu);
    RowMask mask;
    mask.causal = true;
    EXPECT_NO_THROW(gpu_kernels().softmax(x, mask, true, out)) << shape_str(shape);
    EXPECT_NO_THROW(gpu_kernels().softmax_backward(x, x, false, out)) << shape_str(shape);
    EXPECT_NO_THROW(gpu_kernels().fill_masked(x, mask, 0.0)) << shape_str(shape);
  }
}

TEST(CudaSoftmaxErrors, OperandsOnTheWrongDeviceOrBadLengthsThrow) {
  SKIP_WITHOUT_GPU();
  const Tensor x = on_gpu(random_normal({2, 3, 4}, DType::f32, 510));
  const Tensor out = Tensor::empty({2, 3, 4}, DType::f32, gpu);
  const Tensor cpu_out = Tensor::empty({2, 3, 4}, DType::f32);
  expect_error_containing([&] { gpu_kernels().softmax(x, {}, false, cpu_out); },
                          {"softmax", "cpu"});
  expect_error_containing([&] { gpu_kernels().softmax_backward(out, x, false, cpu_out); },
                          {"softmax_backward"});
  expect_error_containing([&] { gpu_kernels().fill_masked(cpu_out, {}, 0.0); },
                          {"fill_masked", "expected a CUDA tensor"});
  const RowMask three_lengths = row_mask_of(false, 0, {1, 2, 3}, DType::i64);
  expect_error_containing([&] { gpu_kernels().softmax(x, three_lengths, false, out); },
                          {"softmax: key_lengths has 3 entries", "[2, 3, 4]"});
  expect_error_containing([&] { gpu_kernels().fill_masked(out, three_lengths, 0.0); },
                          {"fill_masked: key_lengths has 3 entries"});
}

INSTANTIATE_TEST_SUITE_P(Cuda, CudaSoftmax, floating_dtypes(), dtype_test_name);

}  // namespace
}  // namespace topkformer::testing
