// Whole models on the GPU against the same models on the CPU: a tiny causal
// language model with each attention variant (and top-k feed-forward layers)
// gives the same loss, the same gradients and the same weights after one
// AdamW step, and a bidirectional classifier with padding the same logits.
// The attention variants are also checked against vanilla attention on the
// GPU itself, as the attention tests do on the CPU.
#include <gtest/gtest.h>

#include <string>

#include "cuda/cuda_test_util.h"
#include "topkformer/attention/functional.h"
#include "topkformer/autograd/tape.h"
#include "topkformer/models/models.h"
#include "topkformer/optim/optimizer.h"

namespace topkformer::testing {
namespace {

using attention::AttentionKind;

models::ModelConfig tiny_language_model(AttentionKind kind, bool topk_feed_forward) {
  models::ModelConfig config;
  config.vocab_size = 53;
  config.max_length = 64;
  config.seed = 11;
  config.transformer.layers = 2;
  config.transformer.d_model = 32;
  config.transformer.heads = 4;
  config.transformer.d_ff = 96;
  config.transformer.dropout = 0.0;
  config.transformer.attention.kind = kind;
  config.transformer.attention.k = 8;
  config.transformer.attention.chunk_size = 16;
  config.transformer.attention.num_features = 64;
  if (topk_feed_forward) {
    config.transformer.feed_forward.kind = nn::FeedForwardKind::topk;
    config.transformer.feed_forward.k = 24;
    config.transformer.feed_forward.chunk_size = 16;
  }
  return config;
}

Tensor random_tokens(const Shape& shape, std::int64_t vocab, std::uint64_t seed) {
  Generator generator(seed);
  const std::vector<float> uniform = Tensor::rand(shape, generator).to_vector<float>();
  std::vector<std::int64_t> ids(uniform.size());
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = std::int64_t(uniform[i] * float(vocab));
  return Tensor::from_vector<std::int64_t>(shape, ids);
}

struct StepResult {
  double loss = 0.0;
  nn::NamedTensors gradients, weights;
};

// One forward, backward and AdamW step of the model on `device`.
StepResult one_step(const models::ModelConfig& config, Device device) {
  models::LanguageModel model(config);
  model.to(device);
  const Tensor inputs = random_tokens({2, 40}, config.vocab_size, 1);
  const Tensor targets = random_tokens({2, 40}, config.vocab_size, 2);
  StepResult result;
  const Tensor loss = model.loss(inputs, targets);
  result.loss = loss.item();
  autograd::backward(loss);
  for (const auto& [name, parameter] : model.named_parameters()) {
    result.gradients.emplace_back(name, parameter.grad().to(Device::cpu()));
  }
  optim::AdamW optimizer(model.named_parameters());
  optimizer.step(1e-2);
  for (const auto& [name, parameter] : model.named_parameters()) {
    result.weights.emplace_back(name, parameter.to(Device::cpu()));
  }
  return result;
}

// f32 everywhere; the devices sum in different orders (cuBLAS against
// OpenBLAS, tree reductions against loops), so results agree to a few ulps
// per operation, compounded over two layers: 1e-4 relative to values of
// order one. The AdamW step divides by sqrt(v) ~ |g|, which amplifies the
// gradients' relative error where a gradient is tiny: weights get 1e-3.
TEST(CudaModels, LanguageModelStepMatchesTheCpuForEveryVariant) {
  SKIP_WITHOUT_GPU();
  const AttentionKind kinds[] = {AttentionKind::vanilla, AttentionKind::chunked,
                                 AttentionKind::topk, AttentionKind::performer};
  for (const AttentionKind kind : kinds) {
    for (const bool topk_feed_forward : {false, true}) {
      const models::ModelConfig config = tiny_language_model(kind, topk_feed_forward);
      const std::string what = attention::attention_kind_name(kind) +
                               (topk_feed_forward ? " with top-k feed-forward" : "");
      const StepResult gpu_step = one_step(config, gpu);
      const StepResult cpu_step = one_step(config, Device::cpu());
      EXPECT_NEAR(gpu_step.loss, cpu_step.loss, 1e-5 * std::abs(cpu_step.loss)) << what;
      for (std::size_t p = 0; p < cpu_step.gradients.size(); ++p) {
        const auto& [name, want] = cpu_step.gradients[p];
        expect_all_close(read_values(gpu_step.gradients[p].second), read_values(want), 1e-4, 1e-2,
                         what + ": gradient of " + name);
        expect_all_close(read_values(gpu_step.weights[p].second),
                         read_values(cpu_step.weights[p].second), 1e-3, 1e-1,
                         what + ": weight after the step " + name);
      }
    }
  }
}

TEST(CudaModels, PaddedClassifierLogitsMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  for (const AttentionKind kind : {AttentionKind::vanilla, AttentionKind::topk}) {
    models::ModelConfig config = tiny_language_model(kind, false);
    config.num_classes = 3;
    const auto logits = [&](Device device) {
      models::Classifier model(config);
      model.to(device);
      model.train(false);
      autograd::NoGradGuard no_grad;
      const Tensor tokens = random_tokens({3, 30}, config.vocab_size, 5);
      const Tensor lengths = Tensor::from_vector<std::int64_t>({3}, {30, 17, 4});
      return model.forward(tokens, lengths);
    };
    expect_matches_cpu(logits(gpu), logits(Device::cpu()), 1e-4, 1.0,
                       attention::attention_kind_name(kind));
  }
}

// On the GPU alone: chunked attention and top-k attention with k = Lk equal
// vanilla attention, forward and backward, causal and with padding.
TEST(CudaModels, AttentionVariantsEqualVanillaOnTheGpu) {
  SKIP_WITHOUT_GPU();
  for (const bool causal : {false, true}) {
    attention::AttentionContext context;
    context.causal = causal;
    context.scale = 0.25;
    if (!causal) context.key_lengths = Tensor::from_vector<std::int64_t>({2}, {50, 23}).to(gpu);
    const auto run =
        [&](const std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)>& attend) {
          std::vector<Tensor> inputs;
          for (std::uint64_t seed = 1; seed <= 3; ++seed) {
            Tensor x = random_normal({2, 3, 50, 16}, DType::f32, seed).to(gpu);
            x.set_requires_grad(true);
            inputs.push_back(x);
          }
          const Tensor out = attend(inputs[0], inputs[1], inputs[2]);
          autograd::backward({out}, {random_normal(out.shape(), DType::f32, 9).to(gpu)});
          return std::vector<Tensor>{out, inputs[0].grad(), inputs[1].grad(), inputs[2].grad()};
        };
    const auto vanilla = run([&](const Tensor& q, const Tensor& k, const Tensor& v) {
      return attention::vanilla_attention(q, k, v, context);
    });
    const auto chunked = run([&](const Tensor& q, const Tensor& k, const Tensor& v) {
      return attention::chunked_attention(q, k, v, context, 7);
    });
    const auto topk = run([&](const Tensor& q, const Tensor& k, const Tensor& v) {
      return attention::topk_attention(q, k, v, context, 50, 13);
    });
    const char* names[] = {"out", "dq", "dk", "dv"};
    for (std::size_t i = 0; i < 4; ++i) {
      const std::string what = std::string(causal ? "causal " : "padded ") + names[i];
      expect_all_close(read_values(chunked[i].to(Device::cpu())),
                       read_values(vanilla[i].to(Device::cpu())), 1e-5, 1.0, "chunked " + what);
      expect_all_close(read_values(topk[i].to(Device::cpu())),
                       read_values(vanilla[i].to(Device::cpu())), 1e-5, 1.0, "top-k " + what);
    }
  }
}

}  // namespace
}  // namespace topkformer::testing
