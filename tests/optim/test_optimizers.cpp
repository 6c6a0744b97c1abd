// Optimizers against hand-computed updates, weight-decay exclusion by name,
// gradient clipping, and the learning-rate schedules at known steps.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "test_util.h"
#include "topkformer/autograd/tape.h"
#include "topkformer/optim/optimizer.h"
#include "topkformer/optim/schedule.h"

namespace topkformer::optim {
namespace {

// Two named parameters with fixed gradients.
struct Problem {
  Tensor weight = Tensor::from_vector<double>({2}, {1.0, -2.0});
  Tensor bias = Tensor::from_vector<double>({1}, {0.5});
  nn::NamedTensors named() const { return {{"layer.weight", weight}, {"layer.bias", bias}}; }
  void set_grads(double scale) {
    for (Tensor t : {weight, bias}) {
      t.set_requires_grad(true);
      t.autograd_meta()->grad = Tensor::full(t.shape(), scale, DType::f64);
    }
  }
};

TEST(AdamW, MatchesTheFormulaWithBiasCorrectionAndDecoupledDecay) {
  Problem problem;
  AdamWOptions options;
  options.weight_decay = 0.1;
  AdamW adamw(problem.named(), options);
  double p = 1.0, m = 0.0, v = 0.0;    // the first weight element, by hand
  double b = 0.5, mb = 0.0, vb = 0.0;  // the bias: no decay ("*.bias")
  for (int t = 1; t <= 3; ++t) {
    const double g = 0.3 * t;
    problem.set_grads(g);
    adamw.step(0.01);
    m = 0.9 * m + 0.1 * g;
    v = 0.999 * v + 0.001 * g * g;
    const double adam =
        (m / (1 - std::pow(0.9, t))) / (std::sqrt(v / (1 - std::pow(0.999, t))) + 1e-8);
    p -= 0.01 * (adam + 0.1 * p);
    mb = 0.9 * mb + 0.1 * g;
    vb = 0.999 * vb + 0.001 * g * g;
    b -= 0.01 * (mb / (1 - std::pow(0.9, t))) / (std::sqrt(vb / (1 - std::pow(0.999, t))) + 1e-8);
  }
  EXPECT_NEAR(problem.weight.value_at({0}), p, 1e-12);
  EXPECT_NEAR(problem.bias.value_at({0}), b, 1e-12);
  EXPECT_EQ(adamw.steps(), 3);
  ASSERT_EQ(adamw.state().size(), 4u);
  EXPECT_EQ(adamw.state()[0].first, "exp_avg.layer.weight");
  EXPECT_EQ(adamw.state()[3].first, "exp_avg_sq.layer.bias");
}

TEST(Sgd, MomentumMatchesTheFormula) {
  Problem problem;
  SgdOptions options;
  options.momentum = 0.9;
  options.weight_decay = 0.01;
  Sgd sgd(problem.named(), options);
  double p = -2.0, u = 0.0;  // second weight element
  for (int t = 1; t <= 3; ++t) {
    problem.set_grads(1.0);
    sgd.step(0.1);
    u = 0.9 * u + 1.0 + 0.01 * p;
    p -= 0.1 * u;
  }
  EXPECT_NEAR(problem.weight.value_at({1}), p, 1e-12);
  // The bias is excluded from decay: 0.5 - 0.1 * (1 + 1.9 + 2.71).
  EXPECT_NEAR(problem.bias.value_at({0}), 0.5 - 0.1 * (1 + 1.9 + 2.71), 1e-12);
}

TEST(Optimizers, ParametersWithoutGradientsAreLeftAlone) {
  Problem problem;
  AdamW adamw(problem.named());
  adamw.step(0.1);
  EXPECT_EQ(problem.weight.value_at({0}), 1.0);
}

TEST(Optimizers, NoDecayPatternsAreShellPatterns) {
  EXPECT_TRUE(matches_any("encoder.layers.0.ff.fc1.bias", {"*.bias"}));
  EXPECT_TRUE(matches_any("encoder.layers.0.ff_norm.weight", {"*norm*"}));
  EXPECT_FALSE(matches_any("encoder.layers.0.ff.fc1.weight", {"*.bias", "*norm*"}));
}

TEST(ClipGradNorm, TheNormAndTheFactorThatScalesItToTheMaximum) {
  Problem problem;
  problem.set_grads(2.0);  // three entries of 2: norm sqrt(12)
  const std::vector<Tensor> parameters{problem.weight, problem.bias};
  const double norm = grad_norm(parameters);
  EXPECT_NEAR(norm, std::sqrt(12.0), 1e-12);
  EXPECT_EQ(problem.bias.grad().value_at({0}), 2.0);  // measuring changes nothing
  EXPECT_NEAR(clip_factor(norm, 1.0), 1.0 / std::sqrt(12.0), 1e-15);
  EXPECT_EQ(clip_factor(norm, 0.0), 1.0);                       // no clipping
  EXPECT_EQ(clip_factor(norm, 5.0), 1.0);                       // under the maximum: unchanged
  EXPECT_EQ(grad_norm({Tensor::zeros({2}, DType::f64)}), 0.0);  // no gradients
}

// The clip factor passed to the fused update gives the parameters and the
// state that scaling the gradients first (the former clip_grad_norm: one
// affine pass) and stepping with scale 1 gives. In f64 both round g * factor
// once, so they agree to the last bits.
template <typename MakeOptimizer>
void expect_scaled_step_equals_clip_then_step(MakeOptimizer make_optimizer) {
  Problem scaled, clipped;
  auto scaled_optimizer = make_optimizer(scaled);
  auto clipped_optimizer = make_optimizer(clipped);
  for (int t = 1; t <= 3; ++t) {
    scaled.set_grads(0.7 * t);
    clipped.set_grads(0.7 * t);
    const std::vector<Tensor> parameters{clipped.weight, clipped.bias};
    const double factor = clip_factor(grad_norm(parameters), 0.5);
    ASSERT_LT(factor, 1.0);
    for (const Tensor& parameter : parameters) {
      kernels::backend(Device::cpu()).affine(parameter.grad(), factor, 0.0, parameter.grad());
    }
    clipped_optimizer->step(0.1);
    scaled_optimizer->step(0.1, factor);
  }
  for (const auto& [got, want] :
       {std::pair{scaled.weight, clipped.weight}, std::pair{scaled.bias, clipped.bias}}) {
    for (std::int64_t i = 0; i < got.numel(); ++i) {
      EXPECT_NEAR(got.value_at({i}), want.value_at({i}), 1e-15) << "element " << i;
    }
  }
  const nn::NamedTensors scaled_state = scaled_optimizer->state();
  const nn::NamedTensors clipped_state = clipped_optimizer->state();
  for (std::size_t s = 0; s < scaled_state.size(); ++s) {
    const Tensor& got = scaled_state[s].second;
    for (std::int64_t i = 0; i < got.numel(); ++i) {
      EXPECT_NEAR(got.value_at({i}), clipped_state[s].second.value_at({i}), 1e-15)
          << scaled_state[s].first << " element " << i;
    }
  }
}

TEST(ClipGradNorm, ScaledAdamWStepEqualsClipThenStep) {
  expect_scaled_step_equals_clip_then_step([](const Problem& problem) {
    AdamWOptions options;
    options.weight_decay = 0.1;
    return std::make_unique<AdamW>(problem.named(), options);
  });
}

TEST(ClipGradNorm, ScaledSgdStepEqualsClipThenStep) {
  expect_scaled_step_equals_clip_then_step([](const Problem& problem) {
    SgdOptions options;
    options.weight_decay = 0.01;
    return std::make_unique<Sgd>(problem.named(), options);
  });
}

TEST(Schedules, ValuesAtKnownSteps) {
  ScheduleOptions options;
  options.base_learning_rate = 1.0;
  options.warmup_steps = 4;
  options.total_steps = 12;
  options.min_learning_rate = 0.1;
  const auto at = [&](ScheduleKind kind, std::int64_t step) {
    options.kind = kind;
    return learning_rate(options, step);
  };
  EXPECT_DOUBLE_EQ(at(ScheduleKind::constant, 2), 0.5);
  EXPECT_DOUBLE_EQ(at(ScheduleKind::constant, 9), 1.0);
  EXPECT_DOUBLE_EQ(at(ScheduleKind::inverse_sqrt, 1), 0.25);
  EXPECT_DOUBLE_EQ(at(ScheduleKind::inverse_sqrt, 4), 1.0);
  EXPECT_DOUBLE_EQ(at(ScheduleKind::inverse_sqrt, 16), 0.5);
  EXPECT_DOUBLE_EQ(at(ScheduleKind::rsqrt_decay, 2), 0.5 / 2.0);
  EXPECT_DOUBLE_EQ(at(ScheduleKind::rsqrt_decay, 16), 0.25);
  EXPECT_DOUBLE_EQ(at(ScheduleKind::cosine, 4), 1.0);
  EXPECT_NEAR(at(ScheduleKind::cosine, 8), 0.55, 1e-12);  // halfway: mean of 1 and 0.1
  EXPECT_DOUBLE_EQ(at(ScheduleKind::cosine, 12), 0.1);
  EXPECT_DOUBLE_EQ(at(ScheduleKind::cosine, 20), 0.1);
  EXPECT_DOUBLE_EQ(at(ScheduleKind::linear, 8), 0.55);
  EXPECT_DOUBLE_EQ(at(ScheduleKind::linear, 12), 0.1);
  options.warmup_steps = 0;
  EXPECT_DOUBLE_EQ(at(ScheduleKind::inverse_sqrt, 4), 0.5);
}

// Every schedule at every step of a run against its formula, written out
// phase by phase: linear warm-up to `base` over w steps (rsqrt_decay: to
// base / sqrt(w)), then the decay.
TEST(Schedules, EveryStepFollowsTheFormula) {
  const double base = 2.0, floor = 0.05;
  const std::int64_t warmup = 8, total = 32;
  ScheduleOptions options{ScheduleKind::constant, base, warmup, total, floor};
  const double w = double(warmup), t = double(total);
  for (std::int64_t step = 1; step <= 40; ++step) {
    const double s = double(step);
    const double progress = std::min(1.0, (s - w) / (t - w));
    const bool warming = s <= w;
    const std::vector<std::pair<ScheduleKind, double>> expected = {
        {ScheduleKind::constant, warming ? base * s / w : base},
        {ScheduleKind::inverse_sqrt, warming ? base * s / w : base * std::sqrt(w / s)},
        {ScheduleKind::rsqrt_decay, warming ? base * (s / w) / std::sqrt(w) : base / std::sqrt(s)},
        {ScheduleKind::cosine,
         warming ? base * s / w
                 : floor + (base - floor) * 0.5 * (1.0 + std::cos(3.141592653589793 * progress))},
        {ScheduleKind::linear, warming ? base * s / w : base - (base - floor) * progress},
    };
    for (const auto& [kind, value] : expected) {
      options.kind = kind;
      EXPECT_NEAR(learning_rate(options, step), value, 1e-12)
          << "kind " << int(kind) << " step " << step;
    }
  }
}

}  // namespace
}  // namespace topkformer::optim
