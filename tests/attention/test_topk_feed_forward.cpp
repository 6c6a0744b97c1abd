// The feed-forward layer as top-k attention over its hidden units (paper
// Eq. 3) against dense references, and nn::FeedForward's kinds.
#include <algorithm>
#include <memory>

#include "module_helpers.h"
#include "topkformer/autograd/gradcheck.h"
#include "topkformer/core/allocator.h"
#include "topkformer/kernels/backend.h"
#include "topkformer/nn/feed_forward.h"
#include "topkformer/ops.h"

namespace topkformer {
namespace {

using kernels::UnaryOp;
using nn::Activation;
using namespace testing;

// x [N, D], w1 [F, D], b1 [F], w2 [D, F] as gradient-requiring leaves.
struct FeedForwardLeaves {
  Tensor x, w1, b1, w2;
  NamedTensors named() const { return {{"x", x}, {"w1", w1}, {"b1", b1}, {"w2", w2}}; }
};

FeedForwardLeaves random_leaves(std::int64_t tokens, std::int64_t width, std::int64_t hidden,
                                DType dtype, std::uint64_t seed) {
  Generator generator(seed);
  return {random_leaf({tokens, width}, generator, dtype),
          random_leaf({hidden, width}, generator, dtype, 0.5),
          random_leaf({hidden}, generator, dtype, 0.5),
          random_leaf({width, hidden}, generator, dtype, 0.5)};
}

Tensor activate(const Tensor& x, Activation activation) {
  return activation == Activation::relu ? ops::relu(x) : ops::gelu(x, ops::GeluApproximation::erf);
}

std::string name_of(Activation activation) {
  return enum_name(nn::activation_names, activation);
}

// The op nn::FeedForward hands topk_feed_forward for `activation`.
UnaryOp op_of(Activation activation) {
  return activation == Activation::relu ? UnaryOp::relu : UnaryOp::gelu_erf;
}

// fc2(act(fc1(x))) through dense ops, keeping per token only the top_k
// largest pre-activations (the others zeroed before fc2) when top_k < F.
Tensor dense_reference(const FeedForwardLeaves& w, std::int64_t top_k, Activation activation) {
  const Tensor hidden = ops::linear(w.x, w.w1, w.b1);
  Tensor activated = activate(hidden, activation);
  if (top_k < hidden.size(1)) {
    const Tensor kept = ops::topk(hidden.detach(), top_k).second;
    Tensor mask = Tensor::zeros(hidden.shape(), hidden.dtype());
    for (std::int64_t i = 0; i < kept.size(0); ++i)
      for (std::int64_t j = 0; j < top_k; ++j)
        mask.at<double>({i, static_cast<std::int64_t>(kept.value_at({i, j}))}) = 1.0;
    activated = ops::mul(activated, mask);
  }
  return ops::linear(activated, w.w2);
}

std::function<Tensor()> topk_of(const FeedForwardLeaves& w, std::int64_t top_k, std::int64_t chunk,
                                Activation activation) {
  return [=] {
    return attention::topk_feed_forward(w.x, w.w1, w.b1, w.w2, top_k, chunk, op_of(activation));
  };
}

TEST(TopKFeedForward, WithKCoveringTheHiddenUnitsEqualsTheDenseLayer) {
  for (Activation activation : all_values<Activation>()) {
    for (auto [dtype, tolerance] : {std::pair{DType::f32, 1e-5}, std::pair{DType::f64, 1e-12}}) {
      const FeedForwardLeaves w = random_leaves(10, 6, 12, dtype, 1);
      const NamedResults expected = run_named(
          [&] { return ops::linear(activate(ops::linear(w.x, w.w1, w.b1), activation), w.w2); },
          w.named());
      for (std::int64_t top_k : {12, 100}) {  // 100 is clamped to the 12 hidden units
        SCOPED_TRACE(name_of(activation) + " k " + std::to_string(top_k) +
                     (dtype == DType::f32 ? " f32" : " f64"));
        expect_same_named_results(run_named(topk_of(w, top_k, 4, activation), w.named()), expected,
                                  tolerance);
      }
    }
  }
}

TEST(TopKFeedForward, WithSmallKEqualsTheDenseTopKReference) {
  for (Activation activation : all_values<Activation>()) {
    const FeedForwardLeaves w = random_leaves(10, 6, 12, DType::f64, 2);
    const NamedResults expected =
        run_named([&] { return dense_reference(w, 3, activation); }, w.named());
    for (std::int64_t chunk : {1, 4, 10, 25}) {  // 4 does not divide the 10 tokens
      SCOPED_TRACE(name_of(activation) + " chunk " + std::to_string(chunk));
      expect_same_named_results(run_named(topk_of(w, 3, chunk, activation), w.named()), expected,
                                1e-12);
    }
  }
}

// The smallest distance of a kept pre-activation from relu's kink at 0, and
// the smallest gap between a token's k-th and (k+1)-th largest
// pre-activations: finite differences are only valid if both are far above
// the gradcheck step.
std::pair<double, double> kink_and_selection_margins(const FeedForwardLeaves& w,
                                                     std::int64_t top_k) {
  const Tensor hidden = ops::linear(w.x, w.w1, w.b1).detach();
  double kink = INFINITY, selection = INFINITY;
  for (std::int64_t i = 0; i < hidden.size(0); ++i) {
    auto row = hidden.select(0, i).to_vector<double>();
    std::sort(row.begin(), row.end(), std::greater<>());
    for (std::int64_t j = 0; j < top_k; ++j) kink = std::min(kink, std::abs(row[j]));
    selection = std::min(selection, row[top_k - 1] - row[top_k]);
  }
  return {kink, selection};
}

TEST(TopKFeedForward, GradientCheck) {
  for (Activation activation : all_values<Activation>()) {
    SCOPED_TRACE(name_of(activation));
    const FeedForwardLeaves w = random_leaves(6, 4, 10, DType::f64, 3);
    const auto [kink, selection] = kink_and_selection_margins(w, 4);
    ASSERT_GT(kink, 1e-3);
    ASSERT_GT(selection, 1e-3);
    const auto report = autograd::gradcheck(
        [&](const std::vector<Tensor>& x) {
          return attention::topk_feed_forward(x[0], x[1], x[2], x[3], 4, 4, op_of(activation));
        },
        {w.x, w.w1, w.b1, w.w2});
    EXPECT_TRUE(report.passed) << report.str();
  }
}

TEST(TopKFeedForward, RejectsBadArguments) {
  const FeedForwardLeaves w = random_leaves(3, 4, 5, DType::f64, 4);
  expect_error_containing(
      [&] { attention::topk_feed_forward(w.x, w.w1, w.b1, w.w2, 0, 2, UnaryOp::relu); },
      {"topk_feed_forward", "k and chunk_size must be >= 1"});
  expect_error_containing(
      [&] { attention::topk_feed_forward(w.x, w.w1, w.b1, w.w1, 2, 2, UnaryOp::relu); },
      {"topk_feed_forward", "[3, 4]", "[5, 4]", "[5]"});
}

// ---- nn::FeedForward ----

constexpr std::int64_t d_model = 6, d_ff = 16;

// A layer with parameters drawn from `seed` (whatever the kind, the same).
std::unique_ptr<nn::FeedForward> make_layer(const nn::FeedForwardConfig& config,
                                            std::uint64_t seed = 5) {
  Generator init(seed);
  auto layer = std::make_unique<nn::FeedForward>(d_model, d_ff, config, init, DType::f64);
  randomize_parameters(*layer, seed, 0.5);
  return layer;
}

TEST(FeedForward, ParametersAreFc1AndFc2WeightsAndBiases) {
  const auto layer = make_layer({});
  const NamedTensors parameters = layer->named_parameters();
  ASSERT_EQ(parameters.size(), 4u);
  EXPECT_EQ(parameters[0].first, "fc1.weight");
  EXPECT_EQ(parameters[0].second.shape(), (Shape{d_ff, d_model}));
  EXPECT_EQ(parameters[1].first, "fc1.bias");
  EXPECT_EQ(parameters[1].second.shape(), (Shape{d_ff}));
  EXPECT_EQ(parameters[2].first, "fc2.weight");
  EXPECT_EQ(parameters[2].second.shape(), (Shape{d_model, d_ff}));
  EXPECT_EQ(parameters[3].first, "fc2.bias");
  EXPECT_EQ(parameters[3].second.shape(), (Shape{d_model}));
}

TEST(FeedForward, ParseKindAcceptsTheKindNamesAndRejectsOthers) {
  for (std::string_view name : nn::feed_forward_kind_names) {
    EXPECT_EQ(nn::feed_forward_kind_name(nn::parse_feed_forward_kind(std::string(name))), name);
  }
  expect_error_containing([] { nn::parse_feed_forward_kind("Dense"); },
                          {"dense|chunked|topk", "'Dense'"});
}

// Bytes the allocator holds after a forward pass (grad mode on) beyond what it held before.
std::int64_t bytes_held_after_forward(nn::FeedForwardKind kind) {
  Generator init(8);
  nn::FeedForwardConfig config;
  config.kind = kind;
  config.chunk_size = 32;
  nn::FeedForward layer(16, 1024, config, init);
  Tensor x = Tensor::randn({256, 16}, init);
  x.set_requires_grad(true);
  Allocator& allocator = allocator_for(Device::cpu());
  const std::int64_t before = allocator.current_bytes();
  const Tensor out = layer.forward(x);
  const std::int64_t held = allocator.current_bytes() - before;
  autograd::current_tape().clear();  // not differentiated: drop what the nodes saved
  return held;
}

TEST(FeedForward, ChunkedHoldsFarLessMemoryAfterForwardThanDense) {
  // Dense keeps the [256, 1024] f32 hidden activations (1 MiB each for fc1's
  // output and relu's) for the backward pass; chunked keeps only its input
  // and output, [256, 16], recomputing the hidden units chunk by chunk.
  const std::int64_t dense = bytes_held_after_forward(nn::FeedForwardKind::dense);
  const std::int64_t chunked = bytes_held_after_forward(nn::FeedForwardKind::chunked);
  EXPECT_GE(dense, 256 * 1024 * 4);
  EXPECT_LT(chunked, dense / 10);
}

}  // namespace
}  // namespace topkformer
