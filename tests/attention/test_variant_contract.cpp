// The contract every attention variant and every feed-forward variant passes
// (docs/architecture.md, "How to add an attention variant"): one parametrised
// suite over the kinds, with a per-kind row saying what the variant claims.
#include <map>
#include <memory>

#include "module_helpers.h"
#include "topkformer/autograd/gradcheck.h"
#include "topkformer/nn/feed_forward.h"
#include "topkformer/nn/multi_head_attention.h"
#include "topkformer/nn/transformer.h"

namespace topkformer {
// Test parameters print as their names in CTest's listing.
namespace attention {
void PrintTo(AttentionKind kind, std::ostream* out) {
  *out << attention_kind_name(kind);
}
}  // namespace attention
namespace nn {
void PrintTo(FeedForwardKind kind, std::ostream* out) {
  *out << feed_forward_kind_name(kind);
}
}  // namespace nn

namespace {

using attention::AttentionConfig;
using attention::AttentionContext;
using attention::AttentionKind;
using namespace testing;

// What a variant claims. exact: equals vanilla up to rounding when its knobs
// cover every key (chunked always; top-k with k >= keys). linear_memory: the
// peak of a forward + backward pass grows linearly in the length.
// causal_cross: supports a causal mask with fewer queries than keys.
struct AttentionClaims {
  bool exact, linear_memory, causal_cross;
};

AttentionClaims claims_of(AttentionKind kind) {
  switch (kind) {
    case AttentionKind::vanilla:
      return {true, false, true};
    case AttentionKind::chunked:
      return {true, true, true};
    case AttentionKind::topk:
      return {true, true, true};
    case AttentionKind::performer:
      return {false, true, false};
    case AttentionKind::count:
      break;
  }
  throw Error("claims_of: a kind without a row in the contract suite");
}

// Knobs that keep every key (`covering`) or select among them.
AttentionConfig config_of(AttentionKind kind, bool covering, std::int64_t k = 7) {
  AttentionConfig config;
  config.kind = kind;
  config.chunk_size = 3;  // divides none of the lengths used here
  config.k = covering ? 100 : k;
  config.num_features = 16;
  return config;
}

AttentionContext context_of(bool causal, std::vector<std::int64_t> lengths) {
  AttentionContext context;
  context.causal = causal;
  context.key_lengths = Tensor::from_vector<std::int64_t>({std::int64_t(lengths.size())}, lengths);
  context.scale = 0.4;  // not 1, so that scaling bugs show
  return context;
}

// The variant on q [B, H, Lq, d], k and v [B, H, Lk, d]. Performer's features
// are drawn from a fixed seed (the others ignore them).
AttentionFunction variant(const AttentionConfig& config, const AttentionContext& context,
                          std::int64_t head_dim, DType dtype) {
  Generator generator(41);
  const Tensor projection =
      attention::draw_performer_projection(config.num_features, head_dim, generator, dtype);
  return [=](const Tensor& q, const Tensor& k, const Tensor& v) {
    return attention::attend(config, q, k, v, context, projection);
  };
}

class AttentionContract : public ::testing::TestWithParam<AttentionKind> {
 protected:
  AttentionKind kind() const { return GetParam(); }
  AttentionClaims claims() const { return claims_of(GetParam()); }
};

TEST_P(AttentionContract, EqualsVanillaWhenItsKnobsCoverEveryKey) {
  if (!claims().exact) GTEST_SKIP() << "an approximation of softmax attention";
  // Self-attention and cross-attention (fewer queries than keys), padded,
  // with and without the causal mask and dropout.
  for (const auto& [queries, keys] : {std::pair{10, 10}, std::pair{5, 13}}) {
    for (bool causal : {false, true}) {
      for (double dropout : {0.0, 0.25}) {
        SCOPED_TRACE(std::to_string(queries) + " queries, " + std::to_string(keys) + " keys" +
                     (causal ? ", causal" : "") + ", dropout " + std::to_string(dropout));
        AttentionContext context = context_of(causal, {keys, keys - 4});
        context.dropout = dropout;
        context.dropout_state = {7, 1000};
        const AttentionInputs in = random_attention_inputs(2, 2, queries, keys, 4, DType::f64, 5);
        const OutputAndGrads expected = run_with_grads(
            variant(config_of(AttentionKind::vanilla, true), context, 4, DType::f64), in);
        const OutputAndGrads got =
            run_with_grads(variant(config_of(kind(), true), context, 4, DType::f64), in);
        expect_same_results(got, expected, 1e-12);
      }
    }
  }
}

TEST_P(AttentionContract, PaddedKeysChangeNothing) {
  // Item 1 has 4 valid keys: with k = 7 every top-k row also keeps padded
  // keys, which must get no weight. Padding is whatever the batch holds past
  // a sequence's end, so padded keys and values are changed wildly.
  for (const auto& [queries, keys] : {std::pair{9, 9}, std::pair{5, 11}}) {
    for (bool causal : {false, true}) {
      if (causal && queries != keys && !claims().causal_cross) continue;
      SCOPED_TRACE(std::to_string(queries) + " queries" + (causal ? ", causal" : ""));
      const AttentionContext context = context_of(causal, {keys, 4});
      const AttentionFunction fn = variant(config_of(kind(), false), context, 4, DType::f64);
      const AttentionInputs in = random_attention_inputs(2, 2, queries, keys, 4, DType::f64, 6);
      const OutputAndGrads before = run_with_grads(fn, in);
      for (std::int64_t h = 0; h < 2; ++h)
        for (std::int64_t j = 4; j < keys; ++j)
          for (std::int64_t c = 0; c < 4; ++c) {
            EXPECT_EQ(before.dk.value_at({1, h, j, c}), 0.0);
            EXPECT_EQ(before.dv.value_at({1, h, j, c}), 0.0);
            in.k.at<double>({1, h, j, c}) *= 5.0;
            in.v.at<double>({1, h, j, c}) += 100.0;
          }
      const OutputAndGrads after = run_with_grads(fn, in);
      EXPECT_LE(relative_error(after.out, before.out), 1e-9);
      EXPECT_LE(relative_error(after.dq, before.dq), 1e-9);
    }
  }
}

TEST_P(AttentionContract, CausalOutputsIgnoreFutureKeys) {
  // Changing the last key and value may change the last query's output,
  // never the outputs before it.
  const AttentionContext context = context_of(true, {8, 8});
  const AttentionFunction fn = variant(config_of(kind(), false), context, 4, DType::f64);
  const AttentionInputs in = random_attention_inputs(2, 2, 8, 8, 4, DType::f64, 7);
  const auto earlier_outputs = [&] {
    return forward_only([&] { return fn(in.q, in.k, in.v); }).narrow(2, 0, 7).contiguous();
  };
  const Tensor before = earlier_outputs();
  for (std::int64_t b = 0; b < 2; ++b)
    for (std::int64_t h = 0; h < 2; ++h)
      for (std::int64_t c = 0; c < 4; ++c) {
        in.k.at<double>({b, h, 7, c}) *= 5.0;
        in.v.at<double>({b, h, 7, c}) += 100.0;
      }
  EXPECT_LE(relative_error(earlier_outputs(), before), 1e-9);
}

TEST_P(AttentionContract, QueriesThatSeeNoKeyGiveZeros) {
  // Item 1 has no valid key; under a causal mask with more queries than
  // keys, the first queries see none either. Their outputs are zeros and
  // nothing is NaN, gradients included.
  std::vector<std::pair<int, int>> shapes = {{6, 6}};
  if (claims().causal_cross) shapes.emplace_back(8, 5);
  for (const auto& [queries, keys] : shapes) {
    SCOPED_TRACE(std::to_string(queries) + " queries, " + std::to_string(keys) + " keys");
    const AttentionContext context = context_of(true, {keys, 0});
    const AttentionInputs in = random_attention_inputs(2, 2, queries, keys, 4, DType::f64, 8);
    const OutputAndGrads got =
        run_with_grads(variant(config_of(kind(), false), context, 4, DType::f64), in);
    const Tensor zero = Tensor::zeros({2, queries, 4}, DType::f64);
    EXPECT_EQ(max_abs_diff(got.out.select(0, 1), zero), 0.0);
    const std::int64_t blind = std::max(0, queries - keys);  // see no key in item 0
    if (blind > 0) {
      EXPECT_EQ(max_abs_diff(got.out.select(0, 0).narrow(1, 0, blind),
                             Tensor::zeros({2, blind, 4}, DType::f64)),
                0.0);
    }
    for (const Tensor& t : {got.out, got.dq, got.dk, got.dv}) {
      EXPECT_EQ(max_abs_diff(t, t), 0.0) << "NaN in an output or a gradient";
    }
  }
}

TEST_P(AttentionContract, GradientCheckWithMasks) {
  for (const auto& [queries, keys] : {std::pair{7, 7}, std::pair{5, 8}}) {
    for (bool causal : {false, true}) {
      if (causal && queries != keys && !claims().causal_cross) continue;
      SCOPED_TRACE(std::to_string(queries) + " queries" + (causal ? ", causal" : ""));
      AttentionContext context = context_of(causal, {keys, 4});
      context.dropout = 0.2;
      context.dropout_state = {9, 0};
      const AttentionFunction fn = variant(config_of(kind(), false, 4), context, 3, DType::f64);
      const AttentionInputs in = random_attention_inputs(2, 2, queries, keys, 3, DType::f64, 9);
      const auto report = autograd::gradcheck(
          [&](const std::vector<Tensor>& x) { return fn(x[0], x[1], x[2]); }, {in.q, in.k, in.v});
      EXPECT_TRUE(report.passed) << report.str();
    }
  }
}

// An f64 layer with parameters drawn from `seed`, scaled up from the default
// init so that attention is far from uniform and the masks matter.
std::unique_ptr<nn::MultiHeadAttention> make_layer(const AttentionConfig& config) {
  Generator init(3);
  auto layer = std::make_unique<nn::MultiHeadAttention>(8, 2, config, init, DType::f64);
  randomize_parameters(*layer, 3, 0.4);
  return layer;
}

TEST_P(AttentionContract, SwapsOnABuiltLayer) {
  // The plug-and-play swap of the paper: the same layer, its variant
  // changed by set_config, and back.
  Generator generator(15);
  const Tensor x = Tensor::randn({2, 6, 8}, generator, DType::f64);
  const nn::AttentionMask mask{true, Tensor::from_vector<std::int64_t>({2}, {6, 5})};
  const auto layer = make_layer(config_of(AttentionKind::vanilla, true));
  const auto forward = [&] { return forward_only([&] { return layer->forward(x, {}, mask); }); };
  const Tensor vanilla = forward();
  layer->set_config(config_of(kind(), true));
  EXPECT_EQ(layer->config().kind, kind());
  const Tensor swapped = forward();
  EXPECT_EQ(swapped.shape(), x.shape());
  EXPECT_EQ(max_abs_diff(swapped, swapped), 0.0) << "NaN";
  if (claims().exact) {
    EXPECT_LE(relative_error(swapped, vanilla), 1e-12);
  }
  layer->set_config(config_of(AttentionKind::vanilla, true));
  EXPECT_EQ(max_abs_diff(forward(), vanilla), 0.0);
}

std::vector<float> values(const Tensor& tensor) {
  return tensor.contiguous().to_vector<float>();
}

// Everything three training steps of a 3-block causal stack produce: the
// outputs, the input's and every parameter's gradients, and the buffers.
std::vector<std::vector<float>> train_steps(AttentionKind kind, bool recompute) {
  nn::TransformerConfig config;
  config.layers = 3;
  config.d_model = 16;
  config.heads = 2;
  config.d_ff = 32;
  config.dropout = 0.2;
  config.attention = config_of(kind, false);
  config.attention.dropout = 0.1;
  config.attention.feature_redraw_interval = 1;  // Performer: a new draw every training call
  config.recompute_layers = recompute;
  Generator init(5);
  nn::TransformerStack stack(config, init);
  std::vector<std::vector<float>> result;
  default_generator().set_state({1234, 0});
  Generator data(7);
  for (int step = 0; step < 3; ++step) {
    Tensor x = Tensor::randn({2, 9, 16}, data);
    x.set_requires_grad(true);
    const Tensor out = stack.forward(x, nn::AttentionMask{true, {}});
    autograd::backward({out}, {Tensor::randn(out.shape(), data)});
    result.push_back(values(out));
    result.push_back(values(x.grad()));
    for (Tensor parameter : stack.parameters()) {
      result.push_back(values(parameter.grad()));
      parameter.zero_grad();
    }
    for (const auto& [name, buffer] : stack.named_buffers()) {
      result.push_back(values(buffer.to(DType::f32)));
    }
  }
  return result;
}

TEST_P(AttentionContract, RecomputedLayersGiveTheSameResultsBitForBit) {
  // train.recompute_layers: dropout replays its masks and Performer's redraw
  // state is rewound for the recomputation, so nothing differs.
  const auto expected = train_steps(kind(), false);
  const auto got = train_steps(kind(), true);
  ASSERT_EQ(got.size(), expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], expected[i]) << "value " << i;
}

// Peak bytes of one forward + backward pass of a layer over [1, L, 64].
double peak_bytes(AttentionKind kind, std::int64_t length) {
  AttentionConfig config = config_of(kind, false);
  config.chunk_size = 128;
  config.k = 32;
  Generator init(3);
  nn::MultiHeadAttention layer(64, 2, config, init);
  Tensor x = Tensor::randn({1, length, 64}, init);
  x.set_requires_grad(true);
  std::vector<Tensor> leaves = layer.parameters();
  leaves.push_back(x);
  return double(peak_of([&] { return layer.forward(x, {}, {true, {}}); }, leaves));
}

TEST_P(AttentionContract, MemoryGrowsAsClaimed) {
  std::map<std::int64_t, double> peak;
  for (std::int64_t length : {512, 1024, 2048}) peak[length] = peak_bytes(kind(), length);
  for (std::int64_t length : {512, 1024}) {
    const double growth = peak[2 * length] / peak[length];
    SCOPED_TRACE("L " + std::to_string(length) + " -> " + std::to_string(2 * length) +
                 ": peak grows " + std::to_string(growth) + "x");
    if (claims().linear_memory) {
      EXPECT_LE(growth, 2.3);
    } else if (length == 1024) {
      EXPECT_GE(growth, 3.5);  // the L x L scores dominate from 1K on
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EveryKind, AttentionContract,
                         ::testing::ValuesIn(all_values<AttentionKind>()), [](const auto& kind) {
                           return attention::attention_kind_name(kind.param);
                         });

// ---- feed-forward variants ----

using nn::FeedForwardKind;

constexpr std::int64_t ff_model = 6, ff_hidden = 16;

// Knobs that keep every hidden unit (`covering`) or select among them.
nn::FeedForwardConfig ff_config_of(FeedForwardKind kind, bool covering, nn::Activation activation) {
  nn::FeedForwardConfig config;
  config.kind = kind;
  config.chunk_size = 3;
  config.k = covering ? ff_hidden : 5;
  config.activation = activation;
  return config;
}

std::unique_ptr<nn::FeedForward> make_ff_layer(const nn::FeedForwardConfig& config) {
  Generator init(5);
  auto layer = std::make_unique<nn::FeedForward>(ff_model, ff_hidden, config, init, DType::f64);
  randomize_parameters(*layer, 5, 0.5);
  return layer;
}

class FeedForwardContract : public ::testing::TestWithParam<FeedForwardKind> {};

TEST_P(FeedForwardContract, EqualsDenseWhenItsKnobsCoverEveryHiddenUnit) {
  Generator generator(6);
  const Tensor x = random_leaf({2, 5, ff_model}, generator);
  for (nn::Activation activation : all_values<nn::Activation>()) {
    SCOPED_TRACE(enum_name(nn::activation_names, activation));
    const auto dense = make_ff_layer(ff_config_of(FeedForwardKind::dense, true, activation));
    const auto layer = make_ff_layer(ff_config_of(GetParam(), true, activation));
    const auto run = [&](nn::FeedForward& ff) {
      return run_named([&] { return ff.forward(x); }, leaves_of(ff, {{"x", x}}));
    };
    expect_same_named_results(run(*layer), run(*dense), 1e-12);
  }
}

TEST_P(FeedForwardContract, GradientCheck) {
  Generator generator(7);
  const Tensor x = random_leaf({2, 3, ff_model}, generator);
  const auto layer = make_ff_layer(ff_config_of(GetParam(), false, nn::Activation::gelu));
  std::vector<Tensor> leaves = {x};
  for (const Tensor& parameter : layer->parameters()) leaves.push_back(parameter);
  const auto report =
      autograd::gradcheck([&](const std::vector<Tensor>&) { return layer->forward(x); }, leaves);
  EXPECT_TRUE(report.passed) << report.str();
}

TEST_P(FeedForwardContract, SwapsOnABuiltLayer) {
  Generator generator(8);
  const Tensor x = Tensor::randn({2, 5, ff_model}, generator, DType::f64);
  const auto relu = nn::Activation::relu;
  const auto layer = make_ff_layer(ff_config_of(FeedForwardKind::dense, true, relu));
  const auto forward = [&] { return forward_only([&] { return layer->forward(x); }); };
  const Tensor dense = forward();
  layer->set_config(ff_config_of(GetParam(), false, relu));
  EXPECT_EQ(layer->config().kind, GetParam());
  const Tensor swapped = forward();
  const auto built = make_ff_layer(ff_config_of(GetParam(), false, relu));
  EXPECT_LE(relative_error(swapped, forward_only([&] { return built->forward(x); })), 1e-12);
  // Keeping 5 of 16 hidden units changes the output: the swap took effect.
  if (GetParam() == FeedForwardKind::topk) {
    EXPECT_GT(relative_error(swapped, dense), 1e-3);
  }
  layer->set_config(ff_config_of(FeedForwardKind::dense, true, relu));
  EXPECT_EQ(max_abs_diff(forward(), dense), 0.0);
}

INSTANTIATE_TEST_SUITE_P(EveryKind, FeedForwardContract,
                         ::testing::ValuesIn(all_values<FeedForwardKind>()),
                         [](const auto& kind) { return nn::feed_forward_kind_name(kind.param); });

}  // namespace
}  // namespace topkformer
