// nn::MultiHeadAttention: parameters, agreement of the exact variants,
// switching variants, Performer feature redraws, dropout and input checks.
#include <algorithm>
#include <cmath>
#include <memory>

#include "module_helpers.h"
#include "topkformer/nn/multi_head_attention.h"

namespace topkformer {
namespace {

using attention::AttentionConfig;
using attention::AttentionKind;
using namespace testing;

constexpr std::int64_t d_model = 8, heads = 2, head_dim = d_model / heads;

AttentionConfig config_of(AttentionKind kind, std::int64_t chunk = 3, std::int64_t k = 100) {
  AttentionConfig config;
  config.kind = kind;
  config.chunk_size = chunk;
  config.k = k;
  config.num_features = 6;
  return config;
}

// An f64 layer whose parameters depend only on `seed`, scaled up from the
// default init so that attention is far from uniform and the masks matter.
std::unique_ptr<nn::MultiHeadAttention> make_layer(const AttentionConfig& config,
                                                   std::uint64_t seed = 3) {
  Generator init(seed);
  auto layer = std::make_unique<nn::MultiHeadAttention>(d_model, heads, config, init, DType::f64);
  randomize_parameters(*layer, seed, 0.4);
  return layer;
}

nn::AttentionMask mask_of(bool causal, std::vector<std::int64_t> lengths) {
  return {causal, Tensor::from_vector<std::int64_t>({std::int64_t(lengths.size())}, lengths)};
}

// The named values of `tensors` as one f64 vector each, for exact comparisons.
std::vector<std::vector<double>> values_of(const NamedTensors& tensors) {
  std::vector<std::vector<double>> values;
  for (const auto& [name, tensor] : tensors) {
    values.push_back(tensor.to(DType::f64).to_vector<double>());
  }
  return values;
}

// The module's buffer `name` (a handle on the module's tensor).
Tensor buffer(const nn::Module& module, const std::string& name) {
  for (const auto& [buffer_name, tensor] : module.named_buffers()) {
    if (buffer_name == name) return tensor;
  }
  ADD_FAILURE() << "no buffer " << name;
  return Tensor::zeros({0});
}

// Adding the same vector to every key shifts each row of scores by a
// constant, which softmax ignores: the key bias gets no gradient (as long as
// masked keys get no weight).
const std::vector<std::string> shift_invariant_parameters = {"k_proj.bias"};

TEST(MultiHeadAttention, ParametersAreTheFourProjections) {
  const auto layer = make_layer(config_of(AttentionKind::vanilla));
  const NamedTensors parameters = layer->named_parameters();
  const std::vector<std::string> expected = {"q_proj.weight",   "q_proj.bias",   "k_proj.weight",
                                             "k_proj.bias",     "v_proj.weight", "v_proj.bias",
                                             "out_proj.weight", "out_proj.bias"};
  ASSERT_EQ(parameters.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(parameters[i].first, expected[i]);
    const Shape shape = i % 2 == 0 ? Shape{d_model, d_model} : Shape{d_model};
    EXPECT_EQ(parameters[i].second.shape(), shape) << expected[i];
  }
  EXPECT_TRUE(layer->named_buffers().empty());  // no Performer features unless asked for
}

TEST(MultiHeadAttention, SameInitSeedGivesTheSameParameters) {
  const auto config = config_of(AttentionKind::vanilla);
  Generator first(11), second(11), other(12);
  const nn::MultiHeadAttention a(d_model, heads, config, first);
  const nn::MultiHeadAttention b(d_model, heads, config, second);
  const nn::MultiHeadAttention c(d_model, heads, config, other);
  EXPECT_EQ(values_of(a.named_parameters()), values_of(b.named_parameters()));
  EXPECT_NE(values_of(a.named_parameters()), values_of(c.named_parameters()));
}

TEST(MultiHeadAttention, ExactVariantsAgreeOnMaskedSelfAttention) {
  Generator generator(13);
  const Tensor x = random_leaf({2, 6, d_model}, generator);
  const nn::AttentionMask mask = mask_of(true, {6, 4});
  const auto vanilla = make_layer(config_of(AttentionKind::vanilla));
  const NamedResults expected =
      run_named([&] { return vanilla->forward(x, {}, mask); }, leaves_of(*vanilla, {{"x", x}}));
  for (const auto& [label, config] :
       {std::pair{"chunked 3", config_of(AttentionKind::chunked, 3)},
        std::pair{"topk k = L", config_of(AttentionKind::topk, 4, 6)},
        std::pair{"topk k > L", config_of(AttentionKind::topk, 4, 50)}}) {
    SCOPED_TRACE(label);
    const auto layer = make_layer(config);
    expect_same_named_results(
        run_named([&] { return layer->forward(x, {}, mask); }, leaves_of(*layer, {{"x", x}})),
        expected, 1e-12, shift_invariant_parameters);
  }
}

TEST(MultiHeadAttention, ExactVariantsAgreeOnCrossAttention) {
  Generator generator(14);
  const Tensor x = random_leaf({2, 5, d_model}, generator);
  const Tensor memory = random_leaf({2, 9, d_model}, generator);
  const nn::AttentionMask mask = mask_of(false, {9, 6});
  const NamedTensors inputs = {{"x", x}, {"memory", memory}};
  const auto vanilla = make_layer(config_of(AttentionKind::vanilla));
  const NamedResults expected =
      run_named([&] { return vanilla->forward(x, memory, mask); }, leaves_of(*vanilla, inputs));
  EXPECT_EQ(expected.out.shape(), x.shape());
  for (const auto& config :
       {config_of(AttentionKind::chunked, 2), config_of(AttentionKind::topk, 3, 9)}) {
    SCOPED_TRACE(attention::attention_kind_name(config.kind));
    const auto layer = make_layer(config);
    expect_same_named_results(
        run_named([&] { return layer->forward(x, memory, mask); }, leaves_of(*layer, inputs)),
        expected, 1e-12, shift_invariant_parameters);
  }
}

TEST(MultiHeadAttention, SwitchingToPerformerRegistersItsFeatures) {
  const auto layer = make_layer(config_of(AttentionKind::vanilla));
  layer->set_config(config_of(AttentionKind::performer));
  const NamedTensors buffers = layer->named_buffers();
  ASSERT_EQ(buffers.size(), 2u);
  EXPECT_EQ(buffers[0].first, "performer_features");
  EXPECT_EQ(buffers[0].second.shape(), (Shape{6, head_dim}));
  EXPECT_EQ(buffers[1].first, "performer_calls");
  EXPECT_EQ(buffers[1].second.dtype(), DType::i64);
  // A drawn projection: not the zeros or garbage of an empty buffer.
  const auto features = buffers[0].second.to_vector<double>();
  EXPECT_TRUE(std::all_of(features.begin(), features.end(),
                          [](double value) { return std::isfinite(value); }));
  EXPECT_GT(max_abs_diff(buffers[0].second, Tensor::zeros({6, head_dim}, DType::f64)), 0.1);

  Generator generator(16);
  const Tensor x = Tensor::randn({1, 5, d_model}, generator, DType::f64);
  const Tensor out = forward_only([&] { return layer->forward(x, {}, mask_of(true, {5})); });
  EXPECT_EQ(out.shape(), x.shape());
}

// The features in use after each of `calls` training calls.
std::vector<Tensor> features_after_each_call(nn::MultiHeadAttention& layer, int calls,
                                             std::uint64_t input_seed) {
  Generator generator(input_seed);
  std::vector<Tensor> history;
  for (int call = 0; call < calls; ++call) {
    const Tensor x = Tensor::randn({1, 4, d_model}, generator, DType::f64);
    forward_only([&] { return layer.forward(x); });
    history.push_back(buffer(layer, "performer_features").clone());
  }
  return history;
}

TEST(MultiHeadAttention, PerformerRedrawsFeaturesEveryIntervalWhileTraining) {
  AttentionConfig config = config_of(AttentionKind::performer);
  config.feature_redraw_interval = 2;
  const auto layer = make_layer(config);
  const Tensor initial = buffer(*layer, "performer_features").clone();
  const std::vector<Tensor> history = features_after_each_call(*layer, 6, 17);
  // Calls 1-2 use the initial draw, calls 3-4 the second, calls 5-6 the third.
  EXPECT_EQ(max_abs_diff(history[0], initial), 0.0);
  for (int call : {1, 3, 5}) EXPECT_EQ(max_abs_diff(history[call], history[call - 1]), 0.0);
  for (int call : {2, 4}) EXPECT_GT(max_abs_diff(history[call], history[call - 1]), 0.1);
  EXPECT_GT(max_abs_diff(history[4], initial), 0.1);
  EXPECT_EQ(buffer(*layer, "performer_calls").to_vector<std::int64_t>(),
            (std::vector<std::int64_t>{6, 3}));
}

TEST(MultiHeadAttention, PerformerRedrawsAreReproducibleFromTheInitSeed) {
  AttentionConfig config = config_of(AttentionKind::performer);
  config.feature_redraw_interval = 2;
  const auto first = make_layer(config);
  const auto second = make_layer(config);
  const Tensor initial = buffer(*first, "performer_features").clone();
  // Different inputs, and the default generator moved: the features depend on neither.
  features_after_each_call(*first, 5, 18);
  default_generator().reserve(1000);
  features_after_each_call(*second, 5, 19);
  EXPECT_EQ(
      max_abs_diff(buffer(*first, "performer_features"), buffer(*second, "performer_features")),
      0.0);
  EXPECT_GT(max_abs_diff(buffer(*first, "performer_features"), initial), 0.1);  // redrawn twice
}

TEST(MultiHeadAttention, PerformerNeverRedrawsInEvalMode) {
  AttentionConfig config = config_of(AttentionKind::performer);
  config.feature_redraw_interval = 1;
  const auto layer = make_layer(config);
  layer->train(false);
  const Tensor initial = buffer(*layer, "performer_features").clone();
  for (const Tensor& features : features_after_each_call(*layer, 4, 20)) {
    EXPECT_EQ(max_abs_diff(features, initial), 0.0);
  }
}

TEST(MultiHeadAttention, DropoutFollowsTheDefaultGeneratorWhileTraining) {
  AttentionConfig config = config_of(AttentionKind::vanilla);
  config.dropout = 0.5;
  const auto layer = make_layer(config);
  Generator generator(21);
  const Tensor x = Tensor::randn({2, 5, d_model}, generator, DType::f64);
  default_generator().set_state({77, 0});
  const Tensor first = forward_only([&] { return layer->forward(x); });
  const Tensor second = forward_only([&] { return layer->forward(x); });
  EXPECT_GT(max_abs_diff(first, second), 1e-3);  // the generator advanced: a new mask
  default_generator().set_state({77, 0});
  EXPECT_EQ(max_abs_diff(forward_only([&] { return layer->forward(x); }), first), 0.0);
}

TEST(MultiHeadAttention, DropoutDropsTheSameWeightsInEveryExactVariant) {
  AttentionConfig config = config_of(AttentionKind::vanilla);
  config.dropout = 0.3;
  const auto layer = make_layer(config);
  Generator generator(22);
  const Tensor x = Tensor::randn({2, 6, d_model}, generator, DType::f64);
  const nn::AttentionMask mask = mask_of(true, {6, 4});
  default_generator().set_state({78, 0});
  const Tensor vanilla = forward_only([&] { return layer->forward(x, {}, mask); });
  for (AttentionKind kind : {AttentionKind::chunked, AttentionKind::topk}) {
    SCOPED_TRACE(attention::attention_kind_name(kind));
    config.kind = kind;
    layer->set_config(config);
    default_generator().set_state({78, 0});
    EXPECT_LE(relative_error(forward_only([&] { return layer->forward(x, {}, mask); }), vanilla),
              1e-12);
  }
}

TEST(MultiHeadAttention, DropoutIsOffInEvalMode) {
  AttentionConfig config = config_of(AttentionKind::vanilla);
  const auto without_dropout = make_layer(config);
  config.dropout = 0.5;
  const auto layer = make_layer(config);
  layer->train(false);
  EXPECT_FALSE(layer->is_training());
  Generator generator(23);
  const Tensor x = Tensor::randn({2, 5, d_model}, generator, DType::f64);
  EXPECT_LE(relative_error(forward_only([&] { return layer->forward(x); }),
                           forward_only([&] { return without_dropout->forward(x); })),
            1e-15);
}

TEST(MultiHeadAttention, RejectsInputsThatAreNotBatchLengthModel) {
  const auto layer = make_layer(config_of(AttentionKind::vanilla));
  expect_error_containing(
      [&] {
        layer->forward(Tensor::zeros({5, d_model}, DType::f64));
      },
      {"MultiHeadAttention", "[5, 8]", "[B, L, 8]"});
  expect_error_containing(
      [&] {
        layer->forward(Tensor::zeros({2, 5, 7}, DType::f64));
      },
      {"MultiHeadAttention", "[2, 5, 7]"});
}

TEST(MultiHeadAttention, RejectsAModelWidthNotDivisibleByTheHeads) {
  Generator init(24);
  expect_error_containing(
      [&] { nn::MultiHeadAttention(10, 3, config_of(AttentionKind::vanilla), init); },
      {"MultiHeadAttention", "10", "3 heads"});
}

}  // namespace
}  // namespace topkformer
