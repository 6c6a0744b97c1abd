// Activation checkpointing of Transformer blocks (model.transformer.
// checkpoint_layers, config key train.checkpoint_layers): the same outputs and
// gradients bit for bit as without, dropout and Performer feature redraws
// included (a cross-attention memory's gradient up to rounding), and a lower
// allocator peak for a deep stack.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

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

nn::TransformerConfig small_config(AttentionKind kind, bool checkpoint_layers) {
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
  config.checkpoint_layers = checkpoint_layers;
  return config;
}

std::vector<float> values(const Tensor& tensor) {
  return tensor.contiguous().to_vector<float>();
}

// Everything one training step of a stack produces: the output, the input's
// and every parameter's gradient, and the buffers afterwards.
struct StepResult {
  std::vector<std::vector<float>> outputs, gradients;
  std::vector<std::vector<std::int64_t>> counters;
  std::vector<std::vector<float>> features;
};

StepResult train_steps(nn::TransformerStack& stack, int steps) {
  StepResult result;
  default_generator().set_state({1234, 0});
  Generator data(7);
  for (int step = 0; step < steps; ++step) {
    Tensor x = Tensor::randn({2, 9, 16}, data);
    x.set_requires_grad(true);
    const Tensor out = stack.forward(x, nn::AttentionMask{true, {}});
    autograd::backward({out}, {Tensor::randn(out.shape(), data)});
    result.outputs.push_back(values(out));
    result.gradients.push_back(values(x.grad()));
    for (Tensor parameter : stack.parameters()) {
      result.gradients.push_back(values(parameter.grad()));
      parameter.zero_grad();
    }
    for (const auto& [name, buffer] : stack.named_buffers()) {
      if (buffer.dtype() == DType::i64) {
        result.counters.push_back(buffer.to_vector<std::int64_t>());
      } else {
        result.features.push_back(values(buffer));
      }
    }
  }
  return result;
}

TEST(CheckpointLayers, SameOutputsAndGradientsBitForBit) {
  for (AttentionKind kind : all_values<AttentionKind>()) {
    SCOPED_TRACE(attention::attention_kind_name(kind));
    Generator init_plain(5), init_checkpointed(5);
    nn::TransformerStack plain(small_config(kind, false), init_plain);
    nn::TransformerStack checkpointed(small_config(kind, true), init_checkpointed);
    const StepResult expected = train_steps(plain, 3);
    const StepResult got = train_steps(checkpointed, 3);
    ASSERT_EQ(got.outputs.size(), expected.outputs.size());
    for (std::size_t i = 0; i < got.outputs.size(); ++i)
      EXPECT_EQ(got.outputs[i], expected.outputs[i]);
    ASSERT_EQ(got.gradients.size(), expected.gradients.size());
    for (std::size_t i = 0; i < got.gradients.size(); ++i) {
      EXPECT_EQ(got.gradients[i], expected.gradients[i]) << "gradient " << i;
    }
    // Performer: the recomputation rewinds the redraw state, so the
    // counters advance once per call, as without checkpoints.
    EXPECT_EQ(got.counters, expected.counters);
    EXPECT_EQ(got.features, expected.features);
    if (kind == AttentionKind::performer) {
      ASSERT_FALSE(got.counters.empty());
      EXPECT_EQ(got.counters.back()[0], 3);  // three training calls
    }
  }
}

TEST(CheckpointLayers, CrossAttentionMemoryGetsTheSameGradient) {
  nn::TransformerConfig config = small_config(AttentionKind::vanilla, false);
  config.cross_attention = true;
  std::vector<std::vector<float>> results[2];
  for (int checkpointed = 0; checkpointed < 2; ++checkpointed) {
    config.checkpoint_layers = checkpointed == 1;
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
    results[checkpointed] = {values(out), values(x.grad()), values(memory.grad())};
    for (const Tensor& parameter : stack.parameters()) {
      results[checkpointed].push_back(values(parameter.grad()));
    }
  }
  ASSERT_EQ(results[1].size(), results[0].size());
  for (std::size_t i = 0; i < results[0].size(); ++i) {
    if (i == 2) {
      // The memory's gradient: each checkpoint returns its block's sum of the
      // key and value contributions, so the blocks' contributions are added
      // in another grouping than without checkpoints: equal up to rounding.
      for (std::size_t j = 0; j < results[0][i].size(); ++j) {
        EXPECT_NEAR(results[1][i][j], results[0][i][j], 1e-5) << "memory gradient " << j;
      }
    } else {
      EXPECT_EQ(results[1][i], results[0][i]) << "result " << i;
    }
  }
}

TEST(CheckpointLayers, WithoutGradientsTheStackRunsPlainly) {
  Generator init_plain(5), init_checkpointed(5);
  nn::TransformerStack plain(small_config(AttentionKind::vanilla, false), init_plain);
  nn::TransformerStack checkpointed(small_config(AttentionKind::vanilla, true), init_checkpointed);
  plain.train(false);
  checkpointed.train(false);
  autograd::NoGradGuard no_grad;
  Generator data(3);
  const Tensor x = Tensor::randn({1, 6, 16}, data);
  EXPECT_EQ(values(checkpointed.forward(x, {})), values(plain.forward(x, {})));
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

TEST(CheckpointLayers, DeepStackNeedsLessMemory) {
  nn::TransformerConfig config = small_config(AttentionKind::vanilla, false);
  config.layers = 8;
  config.d_model = 32;
  config.d_ff = 64;
  Generator init_plain(5), init_checkpointed(5), data(9);
  nn::TransformerStack plain(config, init_plain);
  config.checkpoint_layers = true;
  nn::TransformerStack checkpointed(config, init_checkpointed);
  Tensor x = Tensor::randn({2, 64, 32}, data);
  x.set_requires_grad(true);
  const std::int64_t plain_peak = peak_of_step(plain, x);
  const std::int64_t checkpointed_peak = peak_of_step(checkpointed, x);
  // Without checkpoints all 8 blocks' activations are alive at the end of the
  // forward pass; with them, 8 block inputs and one block's activations.
  EXPECT_LT(double(checkpointed_peak), 0.4 * double(plain_peak))
      << "checkpointed " << checkpointed_peak << " bytes, plain " << plain_peak;
}

TEST(CheckpointLayers, ConfigKeyReachesTheModel) {
  const train::Config defaults = train::parse_config("", "defaults.yaml");
  EXPECT_FALSE(defaults.model.transformer.checkpoint_layers);
  const train::Config config = train::parse_config("train: {checkpoint_layers: true}\n", "x.yaml");
  EXPECT_TRUE(config.model.transformer.checkpoint_layers);
  EXPECT_TRUE(train::resolved_model_config(config, 50).transformer.checkpoint_layers);
  EXPECT_NE(train::to_yaml(config).find("checkpoint_layers: true"), std::string::npos);
  const train::Config overridden =
      train::parse_config("", "x.yaml", {"train.checkpoint_layers=true"});
  EXPECT_TRUE(overridden.model.transformer.checkpoint_layers);
}

}  // namespace
}  // namespace topkformer
