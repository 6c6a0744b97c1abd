// Training runs on the GPU: the tiny ListOps run's losses follow the CPU
// run's, and a run stopped and resumed on the GPU equals an uninterrupted
// one (every CUDA kernel is deterministic and cuBLAS is on one stream, so
// bit for bit, as on the CPU).
#include <gtest/gtest.h>

#include "cuda/cuda_test_util.h"
#include "topkformer/core/runtime.h"
#include "train/trainer_fixture.h"

namespace topkformer::train {
namespace {

class CudaTrainerTest : public TrainerTest {};

// f32 on both devices, summed in different orders: the first losses agree
// to rounding, and after the weights drift apart by rounding for a dozen
// AdamW steps, still to 1e-3 relative.
TEST_F(CudaTrainerTest, LossesFollowTheCpuRun) {
  SKIP_WITHOUT_GPU();
  const TrainSummary cpu_run = run_training(listops_config({"train.steps=12"}), options("cpu"));
  const TrainSummary gpu_run =
      run_training(listops_config({"train.steps=12", "runtime.device=cuda"}), options("gpu"));
  ASSERT_EQ(gpu_run.losses.size(), cpu_run.losses.size());
  EXPECT_NEAR(gpu_run.losses[0], cpu_run.losses[0], 1e-5 * std::abs(cpu_run.losses[0]));
  for (std::size_t step = 0; step < cpu_run.losses.size(); ++step) {
    EXPECT_NEAR(gpu_run.losses[step], cpu_run.losses[step], 1e-3 * std::abs(cpu_run.losses[step]))
        << "step " << step + 1;
  }
}

TEST_F(CudaTrainerTest, ResumeOnTheGpuIsBitExact) {
  SKIP_WITHOUT_GPU();
  const auto with_steps = [&](int steps) {
    return listops_config({"runtime.device=cuda", "train.eval_every=3", "train.save_every=3",
                           "train.keep_last=1", "train.steps=" + std::to_string(steps)});
  };
  const TrainSummary whole = run_training(with_steps(12), options("whole"));
  run_training(with_steps(6), options("split"));
  const TrainSummary second_half = run_training(with_steps(12), options("split", "auto"));
  ASSERT_EQ(second_half.first_step, 7);
  ASSERT_EQ(second_half.losses.size(), 6u);
  for (std::size_t step = 0; step < 6; ++step) {
    EXPECT_EQ(whole.losses[6 + step], second_half.losses[step]) << "step " << step + 7;
  }
}

TEST_F(CudaTrainerTest, Bf16TracksTheFp32LossCurve) {
  SKIP_WITHOUT_GPU();
  const TrainSummary fp32 =
      run_training(listops_config({"train.steps=12", "runtime.device=cuda"}), options("fp32"));
  const TrainSummary bf16 = run_training(
      listops_config({"train.steps=12", "runtime.device=cuda", "runtime.precision=bf16"}),
      options("bf16"));
  // Inputs of every product rounded to 8 mantissa bits: losses within 2%.
  for (std::size_t step = 0; step < fp32.losses.size(); ++step) {
    EXPECT_NEAR(bf16.losses[step], fp32.losses[step], 2e-2 * std::abs(fp32.losses[step]))
        << "step " << step + 1;
  }
  set_matmul_precision(MatmulPrecision::fp32);
}

}  // namespace
}  // namespace topkformer::train
