// uniform and normal fills: the range and moments of 1e5 draws, replay from
// the same (seed, offset), the fixed words each element reads (rng.h), and f32
// and f64 normals being the same numbers up to f32 rounding.
#include <cmath>

#include "kernels/reference.h"

namespace topkformer::testing {
namespace {

constexpr PhiloxState state{20240917, 10};
constexpr std::int64_t samples = 100000;

struct Moments {
  double mean = 0.0, variance = 0.0;
};

Moments moments(const std::vector<double>& values) {
  Moments m;
  for (const double v : values) m.mean += v;
  m.mean /= double(values.size());
  for (const double v : values) m.variance += (v - m.mean) * (v - m.mean);
  m.variance /= double(values.size() - 1);
  return m;
}

std::uint32_t word(PhiloxState s, std::uint64_t n) {
  return philox_word(s.seed, s.offset + n);
}

class RandomFillKernel : public FloatingKernelTest {
 protected:
  Tensor uniform(std::int64_t n, PhiloxState s, double low, double high) const {
    const Tensor out = Tensor::empty({n}, dtype());
    cpu_kernels().uniform(out, s, low, high);
    return out;
  }
  Tensor normal(std::int64_t n, PhiloxState s, double mean, double sigma, DType type) const {
    const Tensor out = Tensor::empty({n}, type);
    cpu_kernels().normal(out, s, mean, sigma);
    return out;
  }
};

// Bounds are 5 standard deviations of the estimators: for U[a, b) the mean
// has sd (b-a)/sqrt(12n) and the variance sd (b-a)^2 sqrt(1/80 - 1/144) / sqrt(n).
TEST_P(RandomFillKernel, UniformStaysInRangeWithUniformMoments) {
  const double low = -2.0, high = 3.0, width = high - low;
  const std::vector<double> values = read_values(uniform(samples, state, low, high));
  for (const double v : values) {
    ASSERT_GE(v, low);
    ASSERT_LT(v, high);
  }
  const Moments m = moments(values);
  const double n = double(samples);
  EXPECT_NEAR(m.mean, (low + high) / 2, 5 * width / std::sqrt(12 * n));
  EXPECT_NEAR(m.variance, width * width / 12,
              5 * width * width * std::sqrt(1.0 / 80 - 1.0 / 144) / std::sqrt(n));
}

// For N(mu, s^2) the mean has sd s/sqrt(n) and the variance sd s^2 sqrt(2/n).
TEST_P(RandomFillKernel, NormalHasRequestedMeanAndVariance) {
  const double mean = 1.5, sigma = 2.0, n = double(samples);
  const Moments m = moments(read_values(normal(samples, state, mean, sigma, dtype())));
  EXPECT_NEAR(m.mean, mean, 5 * sigma / std::sqrt(n));
  EXPECT_NEAR(m.variance, sigma * sigma, 5 * sigma * sigma * std::sqrt(2.0 / n));
}

TEST_P(RandomFillKernel, SameSeedAndOffsetReplayTheSameValues) {
  EXPECT_EQ(read_values(uniform(33, state, 0.0, 1.0)), read_values(uniform(33, state, 0.0, 1.0)));
  EXPECT_EQ(read_values(normal(33, state, 0.0, 1.0, dtype())),
            read_values(normal(33, state, 0.0, 1.0, dtype())));
  EXPECT_NE(read_values(uniform(33, state, 0.0, 1.0)),
            read_values(uniform(33, PhiloxState{state.seed + 1, state.offset}, 0.0, 1.0)));
}

// Element e reads a fixed run of words (rng.h): a draw starting `skip`
// elements later is the tail of the longer draw, whatever the tensor size.
TEST_P(RandomFillKernel, ElementsReadFixedWordsOfTheStream) {
  const std::uint64_t per_uniform =
      dtype() == DType::f32 ? words_per_uniform_f32 : words_per_uniform_f64;
  const std::int64_t skip = 5;
  const std::vector<double> whole = read_values(uniform(17, state, 0.0, 1.0));
  const std::vector<double> tail = read_values(
      uniform(17 - skip, PhiloxState{state.seed, state.offset + skip * per_uniform}, 0.0, 1.0));
  EXPECT_EQ(tail, std::vector<double>(whole.begin() + skip, whole.end()));

  const std::vector<double> normals = read_values(normal(17, state, 0.0, 1.0, dtype()));
  const std::vector<double> normal_tail =
      read_values(normal(17 - skip, PhiloxState{state.seed, state.offset + skip * words_per_normal},
                         0.0, 1.0, dtype()));
  EXPECT_EQ(normal_tail, std::vector<double>(normals.begin() + skip, normals.end()));
}

// The exact values: uniform_f32 of word e (f32), uniform_f64 of words 2e and
// 2e + 1 (f64), normal_from_words of words 2e and 2e + 1; the GPU must match.
TEST_P(RandomFillKernel, ValuesAreTheDocumentedFunctionsOfTheWords) {
  const double low = -1.0, high = 4.0, mean = 0.5, sigma = 3.0;
  const std::vector<double> u = read_values(uniform(17, state, low, high));
  const std::vector<double> z = read_values(normal(17, state, mean, sigma, dtype()));
  std::vector<double> want_u, want_z;
  for (std::uint64_t e = 0; e < 17; ++e) {
    const double unit = dtype() == DType::f32
                            ? double(uniform_f32(word(state, e)))
                            : uniform_f64(word(state, 2 * e), word(state, 2 * e + 1));
    want_u.push_back(low + (high - low) * unit);
    want_z.push_back(mean + sigma * normal_from_words(word(state, 2 * e), word(state, 2 * e + 1)));
  }
  expect_all_close(u, want_u, tol(), 1.0, "uniform");
  expect_all_close(z, want_z, tol(), 1.0, "normal");
}

INSTANTIATE_TEST_SUITE_P(Floating, RandomFillKernel, floating_dtypes(), dtype_test_name);

// One stream, two precisions: an f32 normal is the f64 normal rounded, so they
// differ by at most half an f32 spacing (2^-24 relative).
TEST(RandomFillKernelPrecision, F32AndF64NormalsDrawTheSameNumbers) {
  const Tensor wide = Tensor::empty({1000}, DType::f64), narrow = Tensor::empty({1000}, DType::f32);
  cpu_kernels().normal(wide, state, 0.25, 2.0);
  cpu_kernels().normal(narrow, state, 0.25, 2.0);
  expect_all_close(narrow, read_values(wide), 0x1p-24, 0.0);
}

}  // namespace
}  // namespace topkformer::testing
