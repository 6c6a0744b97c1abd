// Building a task from a config: a model too large for the machine's memory
// is refused from the config alone, before anything is allocated or read.
#include "topkformer/train/task.h"

#include <gtest/gtest.h>

#include <chrono>

#include "test_util.h"
#include "topkformer/core/device.h"

namespace topkformer::train {
namespace {

using testing::expect_error_containing;

TEST(ModelMemory, ModelTooLargeForTheMachineIsRefusedAtOnce) {
  // 10^8 layers used to be allocated one by one until the OOM killer came.
  // The listops task and tokenizer read no file before the check.
  const Config config = parse_config("", "big.yaml", {"model.layers=100000000"});
  const auto start = std::chrono::steady_clock::now();
  expect_error_containing([&] { make_task(config); },
                          {"big.yaml: model: 1.98e+13 parameters (model.layers 100000000, "
                           "d_model 128, d_ff 512, vocabulary 17, max_length 2000) need at least "
                           "3.17e+14 bytes (288.5 TiB) for their weights, gradients and AdamW's 2 "
                           "moments to train, more than the ",
                           " of memory of this machine"});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(ModelMemory, EvaluationNeedsOnlyTheWeights) {
  // f32 weights that take 30% of the memory: evaluation fits, training with
  // SGD (weights, gradients, momentum: 90%) fits, with AdamW (two moments:
  // 120%) does not.
  const double memory = double(device_memory_bytes(Device::cpu()));
  ASSERT_GT(memory, 0.0);
  Config config = parse_config("", "x.yaml");
  models::ModelConfig model = resolved_model_config(config, 17);
  model.vocab_size = std::int64_t(0.3 * memory / 4.0 / double(model.transformer.d_model));
  EXPECT_NO_THROW(check_model_fits(config, model, TaskUse::evaluation));
  expect_error_containing(
      [&] { check_model_fits(config, model, TaskUse::training); },
      {"x.yaml: model: ", "for their weights, gradients and AdamW's 2 moments"});
  config.optimizer.kind = OptimizerKind::sgd;
  EXPECT_NO_THROW(check_model_fits(config, model, TaskUse::training));
  model.vocab_size *= 2;  // 60%: 180% with SGD
  expect_error_containing([&] { check_model_fits(config, model, TaskUse::training); },
                          {"weights, gradients and SGD's momentum to train"});
  model.vocab_size *= 2;  // 120%: not even the weights
  expect_error_containing([&] { check_model_fits(config, model, TaskUse::evaluation); },
                          {"for their weights to evaluate"});
}

}  // namespace
}  // namespace topkformer::train
