// Performer (FAVOR+): the orthogonal random features, the approximation of
// softmax attention, exact agreement with the quadratic linear-attention
// formula on the same features, key padding, and gradients.
#include <cmath>
#include <functional>

#include "module_helpers.h"
#include "topkformer/autograd/gradcheck.h"
#include "topkformer/ops.h"

namespace topkformer {
namespace {

using attention::AttentionContext;
using namespace testing;

double row_dot(const std::vector<double>& rows, std::int64_t width, std::int64_t a,
               std::int64_t b) {
  double dot = 0.0;
  for (std::int64_t c = 0; c < width; ++c) dot += rows[a * width + c] * rows[b * width + c];
  return dot;
}

// |cos| of the angle between rows a and b.
double row_cosine(const std::vector<double>& rows, std::int64_t width, std::int64_t a,
                  std::int64_t b) {
  return std::abs(row_dot(rows, width, a, b)) /
         std::sqrt(row_dot(rows, width, a, a) * row_dot(rows, width, b, b));
}

AttentionContext padded_context(bool causal, std::vector<std::int64_t> lengths) {
  AttentionContext context;
  context.causal = causal;
  context.key_lengths = Tensor::from_vector<std::int64_t>({std::int64_t(lengths.size())}, lengths);
  return context;
}

// phi(x) for x [B, H, L, d], written out with loops in f64: x' = x d^-1/4,
// logits = x' W^T, phi = m^-1/2 exp(logits - |x'|^2 / 2 - stabiliser), the
// stabiliser being the maximum of logits - |x'|^2 / 2 over a row for queries
// and over all keys and features of a head for keys, so that the largest
// feature is 1 whatever the norms. (The library takes the keys' maximum over
// valid keys only; any constant per head cancels in the attention formula.)
// Returns [B * H * L * m] values.
std::vector<double> loop_features(const Tensor& x, const Tensor& projection, bool is_query) {
  const std::int64_t groups = x.size(0) * x.size(1), length = x.size(2), d = x.size(3);
  const std::int64_t m = projection.size(0);
  const auto values = x.detach().to(DType::f64).to_vector<double>();
  const auto w = projection.to(DType::f64).to_vector<double>();
  const double shrink = std::pow(double(d), -0.25);
  std::vector<double> logits(groups * length * m), half_norm(groups * length);
  for (std::int64_t row = 0; row < groups * length; ++row) {
    for (std::int64_t c = 0; c < d; ++c) {
      half_norm[row] += 0.5 * std::pow(shrink * values[row * d + c], 2);
    }
    for (std::int64_t f = 0; f < m; ++f) {
      for (std::int64_t c = 0; c < d; ++c) {
        logits[row * m + f] += shrink * values[row * d + c] * w[f * d + c];
      }
    }
  }
  for (std::int64_t row = 0; row < groups * length; ++row) {
    for (std::int64_t f = 0; f < m; ++f) logits[row * m + f] -= half_norm[row];
  }
  std::vector<double> features(logits.size());
  for (std::int64_t g = 0; g < groups; ++g) {
    double head_max = -INFINITY;
    for (std::int64_t e = g * length * m; e < (g + 1) * length * m; ++e) {
      head_max = std::max(head_max, logits[e]);
    }
    for (std::int64_t row = g * length; row < (g + 1) * length; ++row) {
      double row_max = -INFINITY;
      for (std::int64_t f = 0; f < m; ++f) row_max = std::max(row_max, logits[row * m + f]);
      const double stabiliser = is_query ? row_max : head_max;
      for (std::int64_t f = 0; f < m; ++f) {
        features[row * m + f] = std::exp(logits[row * m + f] - stabiliser) / std::sqrt(double(m));
      }
    }
  }
  return features;
}

// Whether query i may see key j of batch item b (Lq == Lk).
bool visible(const AttentionContext& context, std::int64_t b, std::int64_t i, std::int64_t j) {
  return j < context.key_lengths.value_at({b}) && (!context.causal || j <= i);
}

// out_i = sum_j (phi_q_i . phi_k_j) v_j / sum_j phi_q_i . phi_k_j over the
// visible keys j, by loops: the quadratic form of linear attention.
Tensor loop_linear_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                             const AttentionContext& context, const Tensor& projection) {
  const std::int64_t batch = q.size(0), heads = q.size(1), length = q.size(2), dv = v.size(3);
  const std::int64_t m = projection.size(0);
  const auto phi_q = loop_features(q, projection, true);
  const auto phi_k = loop_features(k, projection, false);
  const auto values = v.detach().to(DType::f64).to_vector<double>();
  std::vector<double> out(batch * heads * length * dv);
  for (std::int64_t b = 0; b < batch; ++b) {
    for (std::int64_t g = b * heads; g < (b + 1) * heads; ++g) {
      for (std::int64_t i = 0; i < length; ++i) {
        const std::int64_t query = g * length + i;
        double denominator = 0.0;
        for (std::int64_t j = 0; j < length; ++j) {
          if (!visible(context, b, i, j)) continue;
          const std::int64_t key = g * length + j;
          double weight = 0.0;
          for (std::int64_t f = 0; f < m; ++f) weight += phi_q[query * m + f] * phi_k[key * m + f];
          denominator += weight;
          for (std::int64_t c = 0; c < dv; ++c)
            out[query * dv + c] += weight * values[key * dv + c];
        }
        for (std::int64_t c = 0; c < dv; ++c) out[query * dv + c] /= denominator;
      }
    }
  }
  return Tensor::from_vector<double>(q.shape(), out);
}

// The same features through differentiable ops (so that gradients can be compared).
Tensor ops_features(const Tensor& x, const Tensor& projection, bool is_query) {
  const Shape& s = x.shape();
  const std::int64_t m = projection.size(0);
  const Tensor shrunk = ops::scale(x, std::pow(double(s[3]), -0.25));
  const Tensor half_norm = ops::scale(ops::sum_last(ops::mul(shrunk, shrunk), true), 0.5);
  const Tensor logits = ops::sub(ops::matmul(shrunk, projection, false, true), half_norm);
  const Tensor stabiliser =
      is_query ? ops::max_last(logits, true)
               : ops::reshape(ops::max_last(ops::reshape(logits, {s[0], s[1], s[2] * m}), true),
                              {s[0], s[1], 1, 1});
  return ops::scale(ops::exp(ops::sub(logits, stabiliser)), 1.0 / std::sqrt(m));
}

// The quadratic formula through ops, the mask applied by multiplying the
// [Lq, Lk] feature products with a constant 0/1 tensor.
Tensor ops_linear_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                            const AttentionContext& context, const Tensor& projection) {
  const std::int64_t batch = q.size(0), length = q.size(2);
  std::vector<double> mask;
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t i = 0; i < length; ++i)
      for (std::int64_t j = 0; j < length; ++j) mask.push_back(visible(context, b, i, j));
  const Tensor weights = ops::mul(ops::matmul(ops_features(q, projection, true),
                                              ops_features(k, projection, false), false, true),
                                  Tensor::from_vector<double>({batch, 1, length, length}, mask));
  return ops::div(ops::matmul(weights, v), ops::sum_last(weights, true));
}

AttentionFunction performer_of(const AttentionContext& context, const Tensor& projection) {
  return [=](const Tensor& q, const Tensor& k, const Tensor& v) {
    return attention::performer_attention(q, k, v, context, projection);
  };
}

TEST(PerformerProjection, RowsWithinEachBlockAreOrthogonal) {
  // 11 features of dimension 4: blocks [0, 4), [4, 8) and the partial [8, 11).
  Generator generator(21);
  const Tensor projection = attention::draw_performer_projection(11, 4, generator, DType::f64);
  ASSERT_EQ(projection.shape(), (Shape{11, 4}));
  const auto rows = projection.to_vector<double>();
  double across_blocks = 0.0;
  for (std::int64_t a = 0; a < 11; ++a) {
    for (std::int64_t b = a + 1; b < 11; ++b) {
      if (a / 4 == b / 4) {
        EXPECT_LE(row_cosine(rows, 4, a, b), 1e-12) << "rows " << a << " and " << b;
      } else {
        across_blocks = std::max(across_blocks, row_cosine(rows, 4, a, b));
      }
    }
  }
  // Blocks are drawn independently: the check above is not met by accident.
  EXPECT_GT(across_blocks, 0.1);
}

TEST(PerformerProjection, DefaultsToF32) {
  Generator generator(22);
  EXPECT_EQ(attention::draw_performer_projection(5, 3, generator).dtype(), DType::f32);
}

TEST(PerformerProjection, RowNormsAreThoseOfGaussianVectors) {
  // |w|^2 of a d-dimensional Gaussian has mean d and standard deviation
  // sqrt(2 d) = 4; the mean of 1024 rows is within 0.5 (four standard errors).
  Generator generator(23);
  const auto rows =
      attention::draw_performer_projection(1024, 8, generator, DType::f64).to_vector<double>();
  double mean_square = 0.0, smallest = INFINITY, largest = 0.0;
  for (std::int64_t r = 0; r < 1024; ++r) {
    const double square = row_dot(rows, 8, r, r);
    mean_square += square / 1024;
    smallest = std::min(smallest, square);
    largest = std::max(largest, square);
  }
  EXPECT_NEAR(mean_square, 8.0, 0.5);
  EXPECT_LT(smallest, 0.5 * largest);  // not normalised to one common length
}

TEST(PerformerProjection, SameGeneratorStateGivesTheSameMatrix) {
  Generator first(24), second(24);
  const Tensor a = attention::draw_performer_projection(10, 4, first, DType::f64);
  const Tensor b = attention::draw_performer_projection(10, 4, second, DType::f64);
  EXPECT_EQ(max_abs_diff(a, b), 0.0);
  EXPECT_EQ(first.state().offset, second.state().offset);
  // The generator advanced, so the next draw differs.
  EXPECT_GT(max_abs_diff(attention::draw_performer_projection(10, 4, first, DType::f64), a), 0.1);
}

// Mean over 5 feature draws of the Frobenius relative error of Performer
// against softmax attention with scale 1/sqrt(d), on fixed inputs.
double mean_approximation_error(std::int64_t features) {
  constexpr std::int64_t dim = 8;
  Generator inputs(31);
  const Tensor q = Tensor::randn({1, 2, 16, dim}, inputs, DType::f64, 0.0, 0.5);
  const Tensor k = Tensor::randn({1, 2, 16, dim}, inputs, DType::f64, 0.0, 0.5);
  const Tensor v = Tensor::randn({1, 2, 16, dim}, inputs, DType::f64);
  AttentionContext context;
  context.scale = 1.0 / std::sqrt(double(dim));
  const Tensor softmax = attention::vanilla_attention(q, k, v, context);
  double total = 0.0;
  for (std::uint64_t seed = 0; seed < 5; ++seed) {
    Generator generator(100 + seed);
    const Tensor projection =
        attention::draw_performer_projection(features, dim, generator, DType::f64);
    total += frobenius_relative_error(attention::performer_attention(q, k, v, context, projection),
                                      softmax);
  }
  return total / 5;
}

TEST(PerformerAttention, ApproximatesSoftmaxAttentionBetterWithMoreFeatures) {
  // phi(q) . phi(k) is an unbiased estimate of exp(q . k / sqrt(d)) whose
  // relative standard deviation is about sqrt((exp(|q' + k'|^2) - 1) / m)
  // with x' = x d^-1/4. With entries of std 0.5 and d = 8, |q'|^2 ~ 0.7, so
  // at m = 1024 each kernel value is off by ~5%, and the output (a ratio of
  // sums over 16 keys whose errors partly cancel) by less: well under 10%.
  const double e16 = mean_approximation_error(16), e64 = mean_approximation_error(64);
  const double e256 = mean_approximation_error(256), e1024 = mean_approximation_error(1024);
  SCOPED_TRACE("errors at m = 16, 64, 256, 1024: " + std::to_string(e16) + " " +
               std::to_string(e64) + " " + std::to_string(e256) + " " + std::to_string(e1024));
  EXPECT_LT(e64, e16);
  EXPECT_LT(e256, e64);
  EXPECT_LT(e1024, e256);
  EXPECT_LT(e1024, 0.1);
}

TEST(PerformerAttention, EqualsTheQuadraticLinearAttentionFormula) {
  Generator generator(41);
  const Tensor projection = attention::draw_performer_projection(6, 4, generator, DType::f64);
  const AttentionInputs in = random_attention_inputs(2, 2, 9, 9, 4, DType::f64, 42);
  for (bool causal : {false, true}) {
    SCOPED_TRACE(causal ? "causal" : "bidirectional");
    const AttentionContext context = padded_context(causal, {9, 6});
    const OutputAndGrads got = run_with_grads(performer_of(context, projection), in);
    EXPECT_LE(relative_error(got.out, loop_linear_attention(in.q, in.k, in.v, context, projection)),
              1e-10);
    const OutputAndGrads expected = run_with_grads(
        [&](const Tensor& q, const Tensor& k, const Tensor& v) {
          return ops_linear_attention(q, k, v, context, projection);
        },
        in);
    expect_same_results(got, expected, 1e-10);
  }
}

// x with every row [b, h, i, :] rescaled to |x'|^2 / 2 = half_norm (x' = x d^-1/4).
Tensor with_half_norm(const Tensor& x, double half_norm) {
  std::vector<double> values = x.detach().to(DType::f64).to_vector<double>();
  const std::int64_t d = x.size(-1);
  for (std::size_t row = 0; row < values.size() / std::size_t(d); ++row) {
    double square = 0.0;
    for (std::int64_t c = 0; c < d; ++c) square += values[row * d + c] * values[row * d + c];
    // |x'|^2 / 2 = |x|^2 / (2 sqrt(d))
    const double factor = std::sqrt(half_norm * 2.0 * std::sqrt(double(d)) / square);
    for (std::int64_t c = 0; c < d; ++c) values[row * d + c] *= factor;
  }
  return Tensor::from_vector<double>(x.shape(), values);
}

// Performer in f32 against the f64 loops for large-norm inputs. The features
// carry a factor exp(-|x'|^2 / 2); once that was applied after the stabiliser,
// a row with |x'|^2 / 2 beyond 87 (exp(-87) is about f32's smallest normal)
// lost every feature: NaN (0/0) when bidirectional, outputs of 0 or of the
// wrong keys when causal. Queries of any norm work now: a row's largest
// feature is 1. Keys share one stabiliser per head, so keys of equal norm
// work at any norm, but a key whose features are all below e^-87 times the
// head's largest still underflows (its weight is that small, but it may be
// the only key a causal query sees); the keys here stay within that spread.
TEST(PerformerAttention, LargeNormInputsInF32MatchAnF64Reference) {
  Generator generator(81);
  const Tensor projection = attention::draw_performer_projection(16, 4, generator, DType::f64);
  const AttentionInputs in = random_attention_inputs(2, 2, 6, 6, 4, DType::f64, 82);
  const auto f32 = [](const Tensor& x) { return x.detach().to(DType::f32); };
  for (bool causal : {false, true}) {
    for (double half_norm : {1.0, 50.0, 120.0, 1000.0}) {
      for (bool large_keys : {false, true}) {
        if (large_keys && half_norm > 120.0) continue;
        SCOPED_TRACE(std::string(causal ? "causal" : "bidirectional") + ", |x'|^2 / 2 = " +
                     std::to_string(half_norm) + (large_keys ? " for keys" : " for queries"));
        const AttentionContext context = padded_context(causal, {6, 4});
        const Tensor q = large_keys ? in.q.detach() : with_half_norm(in.q, half_norm);
        const Tensor k = large_keys ? with_half_norm(in.k, half_norm) : in.k.detach();
        const Tensor expected = loop_linear_attention(q, k, in.v, context, projection);
        const Tensor got = forward_only([&] {
          return attention::performer_attention(f32(q), f32(k), f32(in.v), context,
                                                f32(projection));
        });
        EXPECT_LE(relative_error(got, expected), 1e-4);
      }
    }
  }
}

TEST(PerformerAttention, CausalRejectsDifferentQueryAndKeyCounts) {
  Generator generator(71);
  const Tensor projection = attention::draw_performer_projection(4, 2, generator, DType::f64);
  const AttentionInputs in = random_attention_inputs(1, 1, 4, 6, 2, DType::f64, 72);
  AttentionContext context;
  context.causal = true;
  expect_error_containing(
      [&] { attention::performer_attention(in.q, in.k, in.v, context, projection); },
      {"performer_attention", "causal", "4", "6"});
}

}  // namespace
}  // namespace topkformer
