// softmax / log-softmax with causal and key-padding masks, and their backward
// passes, against per-row loops in double that apply the masks by their
// definition in backend.h (key j of query i is masked when causal and
// j > i + offset, or when j >= key_lengths[b]).
#include <limits>
#include <string>
#include <utility>

#include "kernels/mask_reference.h"
#include "kernels/reference.h"

namespace topkformer::testing {
namespace {

using kernels::RowMask;

constexpr double infinity = std::numeric_limits<double>::infinity();

std::vector<double> reference_softmax(const std::vector<double>& x, const std::vector<bool>& masked,
                                      std::int64_t n, bool log) {
  std::vector<double> y(x.size());
  for (std::size_t row = 0; row < x.size() / n; ++row) {
    double max_value = -infinity;
    for (std::int64_t j = 0; j < n; ++j) {
      if (!masked[row * n + j]) max_value = std::max(max_value, x[row * n + j]);
    }
    double total = 0.0;
    for (std::int64_t j = 0; j < n; ++j) {
      if (!masked[row * n + j]) total += std::exp(x[row * n + j] - max_value);
    }
    for (std::int64_t j = 0; j < n; ++j) {
      const std::size_t e = row * n + j;
      if (masked[e]) {
        y[e] = log ? -infinity : 0.0;  // also covers fully masked rows
      } else {
        y[e] = log ? x[e] - max_value - std::log(total) : std::exp(x[e] - max_value) / total;
      }
    }
  }
  return y;
}

// dx = y (dy - sum(dy y)) for softmax, dy - exp(y) sum(dy) for log-softmax,
// sums over unmasked entries; masked entries get 0.
std::vector<double> reference_softmax_backward(const std::vector<double>& y,
                                               const std::vector<double>& dy,
                                               const std::vector<bool>& masked, std::int64_t n,
                                               bool log) {
  std::vector<double> dx(y.size(), 0.0);
  for (std::size_t row = 0; row < y.size() / n; ++row) {
    double total = 0.0;
    for (std::int64_t j = 0; j < n; ++j) {
      const std::size_t e = row * n + j;
      if (!masked[e]) total += log ? dy[e] : dy[e] * y[e];
    }
    for (std::int64_t j = 0; j < n; ++j) {
      const std::size_t e = row * n + j;
      if (!masked[e]) dx[e] = log ? dy[e] - std::exp(y[e]) * total : y[e] * (dy[e] - total);
    }
  }
  return dx;
}

std::vector<MaskCase> mask_cases() {
  return {
      {"unmasked_1x1", {1, 1}},
      {"unmasked_rows", {3, 17}},
      {"unmasked_rank4", {2, 3, 4, 33}},
      {"causal", {2, 3, 5, 5}, true, 0},
      {"causal_offset", {2, 4, 7}, true, 3},               // 4 new queries after 3 cached keys
      {"causal_negative_offset", {2, 5, 5}, true, -2},     // rows 0 and 1 fully masked
      {"padding_i64", {3, 2, 4, 6}, false, 0, {6, 2, 0}},  // item 2 fully masked
      {"padding_i32", {3, 4, 6}, false, 0, {1, 5, 9}, DType::i32},  // 9 > Lk: no mask
      {"causal_and_padding", {2, 2, 6, 6}, true, 0, {4, 6}},
  };
}

class SoftmaxKernel : public FloatingKernelTest {};

TEST_P(SoftmaxKernel, ForwardMatchesMaskedReference) {
  for (const MaskCase& c : mask_cases()) {
    for (const bool log : {false, true}) {
      const Tensor x = random_normal(c.shape, dtype(), 70, 3.0);
      const Tensor out = Tensor::empty(c.shape, dtype());
      cpu_kernels().softmax(x, make_mask(c), log, out);
      expect_all_close(out,
                       reference_softmax(read_values(x), reference_mask(c), c.shape.back(), log),
                       tol(), 1.0, c.name + (log ? " log" : ""));
    }
  }
}

// Logits of size 1e3 overflow exp() unless the row maximum is subtracted.
TEST_P(SoftmaxKernel, LargeLogitsStayFinite) {
  const MaskCase c{"large", {4, 9}};
  for (const bool log : {false, true}) {
    const Tensor x = random_normal(c.shape, dtype(), 71, 1000.0);
    const Tensor out = Tensor::empty(c.shape, dtype());
    cpu_kernels().softmax(x, make_mask(c), log, out);
    expect_all_close(out, reference_softmax(read_values(x), reference_mask(c), 9, log), tol());
  }
}

// With every key masked, softmax is all 0 and log-softmax all -inf (not NaN).
TEST_P(SoftmaxKernel, FullyMaskedRowIsZeroOrMinusInfinity) {
  const MaskCase c{"all_padding", {2, 3, 4}, false, 0, {0, 4}};
  for (const bool log : {false, true}) {
    const Tensor out = Tensor::empty(c.shape, dtype());
    cpu_kernels().softmax(random_normal(c.shape, dtype(), 72), make_mask(c), log, out);
    const std::vector<double> y = read_values(out);
    for (std::size_t e = 0; e < 12; ++e) {
      EXPECT_EQ(y[e], log ? -infinity : 0.0) << "element " << e << (log ? " log" : "");
    }
  }
}

// The backward takes the forward output: y comes from the kernel itself,
// masked entries included, as it does in training.
TEST_P(SoftmaxKernel, BackwardMatchesAnalyticFormula) {
  for (const MaskCase& c : mask_cases()) {
    for (const bool log : {false, true}) {
      const Tensor y = Tensor::empty(c.shape, dtype());
      cpu_kernels().softmax(random_normal(c.shape, dtype(), 73, 2.0), make_mask(c), log, y);
      const Tensor dy = random_normal(c.shape, dtype(), 74);
      const Tensor dx = Tensor::empty(c.shape, dtype());
      cpu_kernels().softmax_backward(y, dy, log, dx);
      const std::vector<double> want = reference_softmax_backward(
          read_values(y), read_values(dy), reference_mask(c), c.shape.back(), log);
      expect_all_close(dx, want, tol(), 1.0, c.name + (log ? " log" : ""));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Floating, SoftmaxKernel, floating_dtypes(), dtype_test_name);

}  // namespace
}  // namespace topkformer::testing
