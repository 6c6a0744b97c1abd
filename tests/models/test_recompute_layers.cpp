// Activation recomputation of Transformer blocks (model.transformer.
// recompute_layers, config key train.recompute_layers): the same outputs and
// gradients bit for bit as without, dropout and Performer feature redraws
// included (a cross-attention memory's gradient up to rounding), and a lower
// allocator peak for a deep stack.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "../test_util.h"
#include "topkformer/autograd/grad_mode.h"
#include "topkformer/autograd/tape.h"
#include "topkformer/core/allocator.h"
#include "topkformer/core/rng.h"
#include "topkformer/nn/transformer.h"
#include "topkformer/train/config.h"
#include "topkformer/train/task.h"

namespace topkformer {
namespace {

using attention::AttentionKind;

nn::TransformerConfig small_config(AttentionKind kind, bool recompute_layers) {
  nn::TransformerConfig config;
  config.layers = 3;
  config.d_model = 16;
  config.heads = 2;
  config.d_ff = 32;
  config.dropout = 0.2;
  config.attention.kind = kind;
  config.attention.dropout = 0.1;
  config.attention.k = 5;
  config.attention.chunk_size = 4;
  config.attention.num_features = 8;
  config.attention.feature_redraw_interval = 1;  // a new draw every training call
  config.feed_forward.activation = nn::Activation::gelu;
  config.recompute_layers = recompute_layers;
  return config;
}

std::vector<float> values(const Tensor& tensor) {
  return tensor.contiguous().to_vector<float>();
}

TEST(RecomputeLayers, CrossAttentionMemoryGetsTheSameGradient) {
  nn::TransformerConfig config = small_config(AttentionKind::vanilla, false);
  config.cross_attention = true;
  std::vector<std::vector<float>> results[2];
  for (int recomputed = 0; recomputed < 2; ++recomputed) {
    config.recompute_layers = recomputed == 1;
    Generator init(5), data(8);
    nn::TransformerStack stack(config, init);
    default_generator().set_state({99, 0});
    Tensor x = Tensor::randn({2, 5, 16}, data);
    Tensor memory = Tensor::randn({2, 7, 16}, data);
    x.set_requires_grad(true);
    memory.set_requires_grad(true);
    const Tensor lengths = Tensor::from_vector<std::int64_t>({2}, {7, 4});
    const Tensor out =
        stack.forward(x, nn::AttentionMask{true, {}}, memory, nn::AttentionMask{false, lengths});
    autograd::backward({out}, {Tensor::randn(out.shape(), data)});
    results[recomputed] = {values(out), values(x.grad()), values(memory.grad())};
    for (const Tensor& parameter : stack.parameters()) {
      results[recomputed].push_back(values(parameter.grad()));
    }
  }
  ASSERT_EQ(results[1].size(), results[0].size());
  for (std::size_t i = 0; i < results[0].size(); ++i) {
    if (i == 2) {
      // The memory's gradient: each recomputed block returns its block's sum of the
      // key and value contributions, so the blocks' contributions are added
      // in another grouping than without recomputation: equal up to rounding.
      for (std::size_t j = 0; j < results[0][i].size(); ++j) {
        EXPECT_NEAR(results[1][i][j], results[0][i][j], 1e-5) << "memory gradient " << j;
      }
    } else {
      EXPECT_EQ(results[1][i], results[0][i]) << "result " << i;
    }
  }
}

TEST(RecomputeLayers, WithoutGradientsTheStackRunsPlainly) {
  Generator init_plain(5), init_recomputed(5);
  nn::TransformerStack plain(small_config(AttentionKind::vanilla, false), init_plain);
  nn::TransformerStack recomputed(small_config(AttentionKind::vanilla, true), init_recomputed);
  plain.train(false);
  recomputed.train(false);
  autograd::NoGradGuard no_grad;
  Generator data(3);
  const Tensor x = Tensor::randn({1, 6, 16}, data);
  EXPECT_EQ(values(recomputed.forward(x, {})), values(plain.forward(x, {})));
}

// Peak bytes of one forward + backward pass above what was held before.
std::int64_t peak_of_step(nn::TransformerStack& stack, const Tensor& x) {
  Allocator& allocator = allocator_for(Device::cpu());
  const std::int64_t before = allocator.current_bytes();
  allocator.reset_peak();
  {
    const Tensor out = stack.forward(x, nn::AttentionMask{true, {}});
    autograd::backward({out}, {Tensor::ones(out.shape())});
  }
  const std::int64_t peak = allocator.peak_bytes() - before;
  for (Tensor parameter : stack.parameters()) parameter.zero_grad();
  Tensor(x).zero_grad();
  return peak;
}

TEST(RecomputeLayers, DeepStackNeedsLessMemory) {
  nn::TransformerConfig config = small_config(AttentionKind::vanilla, false);
  config.layers = 8;
  config.d_model = 32;
  config.d_ff = 64;
  Generator init_plain(5), init_recomputed(5), data(9);
  nn::TransformerStack plain(config, init_plain);
  config.recompute_layers = true;
  nn::TransformerStack recomputed(config, init_recomputed);
  Tensor x = Tensor::randn({2, 64, 32}, data);
  x.set_requires_grad(true);
  const std::int64_t plain_peak = peak_of_step(plain, x);
  const std::int64_t recomputed_peak = peak_of_step(recomputed, x);
  // Without recomputation all 8 blocks' activations are alive at the end of the
  // forward pass; with them, 8 block inputs and one block's activations.
  EXPECT_LT(double(recomputed_peak), 0.4 * double(plain_peak))
      << "recomputed " << recomputed_peak << " bytes, plain " << plain_peak;
}

TEST(RecomputeLayers, ConfigKeyReachesTheModel) {
  const train::Config defaults = train::parse_config("", "defaults.yaml");
  EXPECT_FALSE(defaults.model.transformer.recompute_layers);
  const train::Config config = train::parse_config("train: {recompute_layers: true}\n", "x.yaml");
  EXPECT_TRUE(config.model.transformer.recompute_layers);
  EXPECT_TRUE(train::resolved_model_config(config, 50).transformer.recompute_layers);
  EXPECT_NE(train::to_yaml(config).find("recompute_layers: true"), std::string::npos);
  const train::Config overridden =
      train::parse_config("", "x.yaml", {"train.recompute_layers=true"});
  EXPECT_TRUE(overridden.model.transformer.recompute_layers);
}

// The key's name before the rename still loads (configs and run directories
// written by earlier versions), is written back under the new name, and
// counts as the same key.
TEST(RecomputeLayers, OldKeyNameCheckpointLayersStillLoads) {
  const train::Config old = train::parse_config("train: {checkpoint_layers: true}\n", "old.yaml");
  EXPECT_TRUE(old.model.transformer.recompute_layers);
  EXPECT_EQ(train::to_yaml(old).find("checkpoint_layers"), std::string::npos);
  EXPECT_TRUE(train::parse_config("", "x.yaml", {"train.checkpoint_layers=true"})
                  .model.transformer.recompute_layers);
  testing::expect_error_containing(
      [] {
        train::parse_config("train:\n  recompute_layers: true\n  checkpoint_layers: false\n",
                            "both.yaml");
      },
      {"both.yaml:3", "train.recompute_layers", "given twice (first on line 2)"});
}

}  // namespace
}  // namespace topkformer
