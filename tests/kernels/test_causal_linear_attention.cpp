// causal_linear_attention and its backward against the quadratic formula
// out_i = sum_{j<=i} (phi_q_i . phi_k_j) v_j / sum_{j<=i} phi_q_i . phi_k_j,
// computed in double with an [L, L] score matrix (not by prefix sums, as the
// kernel does); the backward also against central finite differences of
// sum(out * w). A zero denominator (phi_k rows all 0 so far) gives output 0.
#include <string>

#include "kernels/linear_attention_reference.h"
#include "kernels/reference.h"

namespace topkformer::testing {
namespace {

using Problem = LinearAttentionProblem;
using Inputs = LinearAttentionInputs;

// {4, 64, 16, 8} has enough work for parallel_for to split the groups over threads.
const Problem problems[] = {{1, 1, 1, 1}, {2, 5, 3, 4}, {3, 17, 5, 7}, {4, 64, 16, 8}};

// The gradient problem of the finite-difference checks.
constexpr Problem small_problem{2, 5, 3, 4};

// Positive features in (0.1, 1), values N(0, 1).
Inputs make_inputs(const Problem& p, DType dtype, std::uint64_t seed,
                   std::int64_t zero_prefix = 0) {
  return linear_attention_inputs(p, dtype, seed, 0.1, zero_prefix);
}

// The quadratic form of one problem in double: scores a_ij = phi_q_i . phi_k_j
// for j <= i, denominators D_i = sum_j a_ij and outputs (0 where D_i = 0).
struct Quadratic {
  Quadratic(const Problem& problem, const Inputs& in)
      : p(problem), q(read_values(in.phi_q)), k(read_values(in.phi_k)), v(read_values(in.v)) {
    const std::int64_t L = p.length, m = p.features, dv = p.width;
    scores.assign(std::size_t(p.groups * L * L), 0.0);
    den.assign(std::size_t(p.groups * L), 0.0);
    out.assign(std::size_t(p.groups * L * dv), 0.0);
    for (std::int64_t g = 0; g < p.groups; ++g) {
      for (std::int64_t i = 0; i < L; ++i) {
        const std::int64_t qi = g * L + i;
        for (std::int64_t j = 0; j <= i; ++j) {
          const std::int64_t kj = g * L + j;
          double a = 0.0;
          for (std::int64_t f = 0; f < m; ++f) a += q[qi * m + f] * k[kj * m + f];
          scores[qi * L + j] = a;
          den[qi] += a;
          for (std::int64_t c = 0; c < dv; ++c) out[qi * dv + c] += a * v[kj * dv + c];
        }
        for (std::int64_t c = 0; c < dv; ++c) {
          out[qi * dv + c] = den[qi] != 0.0 ? out[qi * dv + c] / den[qi] : 0.0;
        }
      }
    }
  }

  // The gradients of sum(out * w), by hand: with out_i = N_i / D_i,
  // d a_ij = w_i . (v_j - out_i) / D_i, d phi_q_i = sum_{j<=i} d a_ij phi_k_j,
  // d phi_k_j = sum_{i>=j} d a_ij phi_q_i, d v_j = sum_{i>=j} a_ij w_i / D_i.
  // Positions with D_i = 0 have a constant output 0 and contribute nothing.
  void gradients(const std::vector<double>& w, std::vector<double>& dq, std::vector<double>& dk,
                 std::vector<double>& dvalues) const {
    const std::int64_t L = p.length, m = p.features, dv = p.width;
    dq.assign(q.size(), 0.0);
    dk.assign(k.size(), 0.0);
    dvalues.assign(v.size(), 0.0);
    for (std::int64_t g = 0; g < p.groups; ++g) {
      for (std::int64_t i = 0; i < L; ++i) {
        const std::int64_t qi = g * L + i;
        if (den[qi] == 0.0) continue;
        for (std::int64_t j = 0; j <= i; ++j) {
          const std::int64_t kj = g * L + j;
          double d_score = 0.0;
          for (std::int64_t c = 0; c < dv; ++c) {
            d_score += w[qi * dv + c] * (v[kj * dv + c] - out[qi * dv + c]);
            dvalues[kj * dv + c] += scores[qi * L + j] * w[qi * dv + c] / den[qi];
          }
          d_score /= den[qi];
          for (std::int64_t f = 0; f < m; ++f) {
            dq[qi * m + f] += d_score * k[kj * m + f];
            dk[kj * m + f] += d_score * q[qi * m + f];
          }
        }
      }
    }
  }

  Problem p;
  std::vector<double> q, k, v, scores, den, out;
};

Tensor run_forward(const Problem& p, const Inputs& in) {
  const Tensor out = Tensor::full(p.value_shape(), 7.0, in.v.dtype());  // garbage to overwrite
  cpu_kernels().causal_linear_attention(in.phi_q, in.phi_k, in.v, out);
  return out;
}

struct Gradients {
  Tensor phi_q, phi_k, v;
};

Gradients run_backward(const Problem& p, const Inputs& in, const Tensor& d_out) {
  const DType dtype = in.v.dtype();
  Gradients d{Tensor::full(p.feature_shape(), 7.0, dtype),
              Tensor::full(p.feature_shape(), 7.0, dtype),
              Tensor::full(p.value_shape(), 7.0, dtype)};
  cpu_kernels().causal_linear_attention_backward(in.phi_q, in.phi_k, in.v, d_out, d.phi_q, d.phi_k,
                                                 d.v);
  return d;
}

void expect_gradients_match_hand_formula(const Problem& p, const Inputs& in, std::uint64_t seed,
                                         double rel_tol, const std::string& what) {
  const Tensor w = random_normal(p.value_shape(), in.v.dtype(), seed);
  std::vector<double> dq, dk, dv;
  Quadratic(p, in).gradients(read_values(w), dq, dk, dv);
  const Gradients d = run_backward(p, in, w);
  expect_all_close(d.phi_q, dq, rel_tol, 1.0, what + " d_phi_q");
  expect_all_close(d.phi_k, dk, rel_tol, 1.0, what + " d_phi_k");
  expect_all_close(d.v, dv, rel_tol, 1.0, what + " d_v");
}

// Central differences of sum(kernel output * w) in f64 for every element of
// phi_q, phi_k and v, except the phi_k elements for which skip_k(e) holds.
template <typename SkipK>
void expect_gradients_match_finite_differences(const Problem& p, const Inputs& in,
                                               std::uint64_t seed, SkipK&& skip_k) {
  const Tensor w = random_normal(p.value_shape(), DType::f64, seed);
  const std::vector<double> wv = read_values(w);
  const auto loss = [&] {
    const std::vector<double> out = read_values(run_forward(p, in));
    double total = 0.0;
    for (std::size_t e = 0; e < out.size(); ++e) total += out[e] * wv[e];
    return total;
  };
  const Gradients d = run_backward(p, in, w);
  const struct {
    const char* name;
    Tensor input, gradient;
    bool skippable;
  } operands[] = {{"phi_q", in.phi_q, d.phi_q, false},
                  {"phi_k", in.phi_k, d.phi_k, true},
                  {"v", in.v, d.v, false}};
  constexpr double h = 1e-6;
  for (const auto& operand : operands) {
    const std::vector<double> x = read_values(operand.input), got = read_values(operand.gradient);
    std::vector<double> want, checked;
    for (std::size_t e = 0; e < x.size(); ++e) {
      if (operand.skippable && skip_k(std::int64_t(e))) continue;
      std::vector<double> shifted = x;
      shifted[e] = x[e] + h;
      write_values(operand.input, shifted);
      const double plus = loss();
      shifted[e] = x[e] - h;
      write_values(operand.input, shifted);
      const double minus = loss();
      want.push_back((plus - minus) / (2 * h));
      checked.push_back(got[e]);
    }
    write_values(operand.input, x);
    EXPECT_FALSE(want.empty());
    expect_all_close(checked, want, 1e-7, 1.0, std::string("d_") + operand.name);
  }
}

class CausalLinearAttentionKernel : public FloatingKernelTest {};

TEST_P(CausalLinearAttentionKernel, ForwardMatchesQuadraticFormula) {
  for (const Problem& p : problems) {
    const Inputs in = make_inputs(p, dtype(), 300);
    expect_all_close(run_forward(p, in), Quadratic(p, in).out, tol(), 1.0, p.name());
  }
}

TEST_P(CausalLinearAttentionKernel, BackwardMatchesHandDerivedGradient) {
  for (const Problem& p : problems) {
    expect_gradients_match_hand_formula(p, make_inputs(p, dtype(), 310), 313, tol(), p.name());
  }
}

// The last group's phi_k rows 0..2 are 0: its outputs 0..2 have denominator 0
// and must be exactly 0, the later ones and the other group are as usual, and
// no gradient is NaN or infinite.
TEST_P(CausalLinearAttentionKernel, ZeroDenominatorGivesZeroOutputAndFiniteGradients) {
  const Problem p = small_problem;
  const std::int64_t zero_prefix = 3;
  const Inputs in = make_inputs(p, dtype(), 320, zero_prefix);
  const Quadratic quadratic(p, in);
  const std::vector<double> out = read_values(run_forward(p, in));
  const std::int64_t last = (p.groups - 1) * p.length;
  for (std::int64_t i = 0; i < p.length; ++i) {
    EXPECT_EQ(quadratic.den[last + i] == 0.0, i < zero_prefix) << "position " << i;
    for (std::int64_t c = 0; c < p.width && i < zero_prefix; ++c) {
      EXPECT_EQ(out[(last + i) * p.width + c], 0.0) << "position " << i << " column " << c;
    }
  }
  expect_all_close(out, quadratic.out, tol(), 1.0, "forward");

  const Gradients d = run_backward(p, in, random_normal(p.value_shape(), dtype(), 323));
  for (const Tensor& gradient : {d.phi_q, d.phi_k, d.v}) {
    for (const double value : read_values(gradient)) ASSERT_TRUE(std::isfinite(value));
  }
  expect_gradients_match_hand_formula(p, in, 323, tol(), "zero prefix");
}

INSTANTIATE_TEST_SUITE_P(CausalLinear, CausalLinearAttentionKernel, floating_dtypes(),
                         dtype_test_name);

TEST(CausalLinearAttentionGradient, MatchesFiniteDifferences) {
  expect_gradients_match_finite_differences(small_problem,
                                            make_inputs(small_problem, DType::f64, 330), 333,
                                            [](std::int64_t) { return false; });
}

// With a zero denominator the output jumps between 0 and a finite value when a
// zero phi_k row moves, so those elements have no derivative and are skipped;
// every other element, the zero positions' phi_q and v included, is checked.
TEST(CausalLinearAttentionGradient, MatchesFiniteDifferencesWithZeroDenominator) {
  const std::int64_t zero_prefix = 3;
  const std::int64_t first_zero =
      (small_problem.groups - 1) * small_problem.length * small_problem.features;
  expect_gradients_match_finite_differences(
      small_problem, make_inputs(small_problem, DType::f64, 340, zero_prefix), 343,
      [&](std::int64_t e) {
        return e >= first_zero && e < first_zero + zero_prefix * small_problem.features;
      });
}

}  // namespace
}  // namespace topkformer::testing
