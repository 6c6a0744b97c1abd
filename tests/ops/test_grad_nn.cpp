// Finite-difference gradient checks of the network ops: layer_norm (input,
// gamma and beta), embedding (a scatter-add into the weight), cross_entropy
// (ignored rows, label smoothing) and dropout (deterministic given its state).
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "ops/grad_helpers.h"
#include "test_util.h"
#include "topkformer/ops.h"

namespace topkformer {
namespace {

using testing::gradcheck_passes;
using testing::leaf;

TEST(GradLayerNorm, InputGammaAndBeta) {
  Generator generator(61);
  for (const Shape& shape : {Shape{5}, Shape{3, 4}, Shape{2, 3, 6}}) {
    SCOPED_TRACE(shape_str(shape));
    const std::int64_t d = shape.back();
    EXPECT_TRUE(
        gradcheck_passes([](const auto& in) { return ops::layer_norm(in[0], in[1], in[2]); },
                         {leaf(shape, generator), leaf({d}, generator), leaf({d}, generator)}));
  }
}

TEST(GradLayerNorm, NonContiguousInputAndLargeEps) {
  Generator generator(62);
  const Tensor x = testing::transposed_leaf({2, 4, 3}, generator);
  const Tensor gamma = testing::strided_leaf({3}, generator);
  const Tensor beta = leaf({3}, generator);
  EXPECT_TRUE(gradcheck_passes(
      [](const auto& in) { return ops::layer_norm(in[0], in[1], in[2], 0.5); }, {x, gamma, beta}));
}

TEST(GradEmbedding, RepeatedIdsAccumulateIntoTheWeight) {
  Generator generator(63);
  // Rows 0 and 2 are looked up three times each, row 3 never.
  const Tensor id_values = testing::ids({2, 4}, {0, 2, 2, 4, 1, 2, 0, 0});
  EXPECT_TRUE(gradcheck_passes([&](const auto& in) { return ops::embedding(in[0], id_values); },
                               {leaf({5, 3}, generator)}));
  // i32 ids of rank 1, and a weight that is a transposed view.
  const Tensor i32_ids = id_values.to(DType::i32).view({8});
  EXPECT_TRUE(gradcheck_passes([&](const auto& in) { return ops::embedding(in[0], i32_ids); },
                               {testing::transposed_leaf({5, 3}, generator)}));
}

TEST(GradCrossEntropy, IgnoredRowsAndLabelSmoothing) {
  Generator generator(64);
  // Two rows carry the ignore index: they add nothing to the loss and the
  // mean is over the four others.
  const Tensor targets = testing::ids({2, 3}, {1, -1, 4, 0, 3, -1});
  for (const double smoothing : {0.0, 0.1, 1.0}) {
    SCOPED_TRACE("label_smoothing " + std::to_string(smoothing));
    EXPECT_TRUE(gradcheck_passes(
        [&](const auto& in) { return ops::cross_entropy(in[0], targets, -1, smoothing); },
        {leaf({2, 3, 5}, generator)}));
  }
  // The default ignore index (-100), i32 targets and non-contiguous logits.
  const Tensor i32_targets = testing::ids({4}, {2, -100, 0, 1}).to(DType::i32);
  EXPECT_TRUE(gradcheck_passes(
      [&](const auto& in) { return ops::cross_entropy(in[0], i32_targets, -100, 0.2); },
      {testing::transposed_leaf({4, 3}, generator)}));
}

TEST(GradCrossEntropy, AllRowsIgnoredGivesZeroLossAndGradient) {
  Generator generator(65);
  const Tensor logits = leaf({3, 4}, generator);
  const Tensor targets = testing::ids({3}, {7, 7, 7});
  EXPECT_TRUE(gradcheck_passes(
      [&](const auto& in) { return ops::cross_entropy(in[0], targets, 7); }, {logits}));
  EXPECT_EQ(ops::cross_entropy(logits.detach(), targets, 7).item(), 0.0);
  EXPECT_EQ(testing::max_abs_diff(logits.grad(), Tensor::zeros({3, 4}, DType::f64)), 0.0);
}

TEST(CrossEntropyValue, MeanOverCountedRowsWithSmoothing) {
  // gradcheck cannot see a wrong normalisation (the loss and its gradient
  // would be scaled alike), so the value is checked against the definition:
  // the mean over non-ignored rows of lse(x) - ((1 - s) x_t + s mean_c x_c).
  Generator generator(67);
  const Tensor logits = Tensor::randn({3, 4}, generator, DType::f64);
  const std::vector<std::int64_t> target_values = {2, -100, 0};
  const double smoothing = 0.2;
  double expected = 0.0;
  for (std::int64_t r : {0, 2}) {
    double total = 0.0, sum = 0.0;
    for (std::int64_t c = 0; c < 4; ++c) {
      total += std::exp(logits.value_at({r, c}));
      sum += logits.value_at({r, c});
    }
    const double picked = logits.value_at({r, target_values[r]});
    expected += std::log(total) - ((1.0 - smoothing) * picked + smoothing * sum / 4.0);
  }
  expected /= 2.0;
  const double loss =
      ops::cross_entropy(logits, testing::ids({3}, target_values), -100, smoothing).item();
  EXPECT_NEAR(loss, expected, 1e-12);
}

TEST(GradDropout, FixedPhiloxStateIsDeterministic) {
  Generator generator(66);
  const PhiloxState state{1234, 17};
  for (const double p : {0.3, 0.7}) {
    SCOPED_TRACE("p " + std::to_string(p));
    const Tensor x = leaf({4, 6}, generator);
    EXPECT_TRUE(
        gradcheck_passes([&](const auto& in) { return ops::dropout(in[0], p, state); }, {x}));
    // The check is meaningful only if the mask drops some elements and keeps others.
    std::int64_t dropped = 0;
    for (double v : ops::dropout(x.detach(), p, state).to_vector<double>()) dropped += v == 0.0;
    EXPECT_GT(dropped, 0);
    EXPECT_LT(dropped, x.numel());
  }
  EXPECT_TRUE(gradcheck_passes([&](const auto& in) { return ops::dropout(in[0], 0.5, state); },
                               {testing::transposed_leaf({3, 5}, generator)}));
}

}  // namespace
}  // namespace topkformer
