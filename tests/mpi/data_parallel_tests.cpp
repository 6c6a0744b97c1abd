// Data-parallel training under `mpirun -np 2` (see tests/CMakeLists.txt): the
// collectives, the gradient reducer, two ranks against one rank with the same
// global batch, and a two-rank run resumed by one rank. Every rank runs every
// test; rank 0 prints the results and the job fails when any rank fails.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>

#include "topkformer/autograd/tape.h"
#include "topkformer/data/data_root.h"
#include "topkformer/data/listops.h"
#include "topkformer/dist/communicator.h"
#include "topkformer/dist/gradient_reducer.h"
#include "topkformer/train/safetensors.h"
#include "topkformer/train/trainer.h"

namespace topkformer {
namespace {

dist::Communicator* world = nullptr;

void expect_collectives_work(dist::Communicator& communicator) {
  ASSERT_EQ(communicator.world_size(), 2) << "run under mpirun -np 2";
  const double rank = communicator.rank();
  Tensor sum = Tensor::from_vector<double>({2}, {rank, 10.0 + rank});
  communicator.all_reduce(sum, dist::ReduceOp::sum);
  EXPECT_EQ(sum.to_vector<double>(), (std::vector<double>{1.0, 21.0}));
  Tensor mean = Tensor::from_vector<float>({1}, {float(3 * rank)});
  communicator.all_reduce(mean, dist::ReduceOp::average);
  EXPECT_EQ(mean.to_vector<float>()[0], 1.5f);
  Tensor most = Tensor::from_vector<std::int64_t>({1}, {std::int64_t(5 - rank)});
  communicator.all_reduce(most, dist::ReduceOp::max);
  EXPECT_EQ(most.to_vector<std::int64_t>()[0], 5);
  Tensor root = Tensor::from_vector<std::int32_t>({3}, {int(rank), 7, int(rank)});
  communicator.broadcast(root, 1);
  EXPECT_EQ(root.to_vector<std::int32_t>(), (std::vector<std::int32_t>{1, 7, 1}));
  const Tensor gathered = communicator.all_gather(Tensor::full({2}, rank));
  EXPECT_EQ(gathered.shape(), (Shape{2, 2}));
  EXPECT_EQ(gathered.to_vector<float>(), (std::vector<float>{0, 0, 1, 1}));
  communicator.barrier();
}

// Blocking MPI calls without a collective timeout, nonblocking ones polled with one.
TEST(Collectives, AllReduceBroadcastGatherBarrier) {
  expect_collectives_work(*world);
  expect_collectives_work(*dist::make_mpi_communicator(/*collective_timeout=*/60.0));
}

// A rank that joins late, but within the collective timeout, is waited for
// (the wait backs off to pauses, and answers liveness probes, meanwhile).
TEST(Collectives, ALateRankWithinTheTimeoutIsWaitedFor) {
  const auto patient = dist::make_mpi_communicator(/*collective_timeout=*/5.0);
  if (world->rank() == 1) std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  Tensor value = Tensor::ones({3});
  patient->all_reduce(value, dist::ReduceOp::sum);
  EXPECT_EQ(value.to_vector<float>(), std::vector<float>(3, 2.0f));
  patient->barrier();
}

TEST(GradientReducer, AveragesInBucketsAndFillsMissingGradients) {
  const double rank = world->rank();
  std::vector<Tensor> parameters;
  for (int p = 0; p < 3; ++p) parameters.push_back(Tensor::zeros({4}).set_requires_grad(true));
  // Gradients rank + p on parameters 0 and 1; parameter 2 has one on rank 1 only.
  for (int p = 0; p < 3; ++p) {
    if (p == 2 && rank == 0) continue;
    autograd::accumulate_grad(*parameters[std::size_t(p)].autograd_meta(),
                              Tensor::full({4}, rank + p));
  }
  dist::GradientReducer reducer(*world, parameters, /*bucket_bytes=*/32);
  EXPECT_EQ(reducer.bucket_count(), 2u);  // 16 bytes each: two per bucket
  reducer.average();
  EXPECT_EQ(parameters[0].grad().to_vector<float>(), std::vector<float>(4, 0.5f));
  EXPECT_EQ(parameters[1].grad().to_vector<float>(), std::vector<float>(4, 1.5f));
  ASSERT_TRUE(parameters[2].grad().defined());
  EXPECT_EQ(parameters[2].grad().to_vector<float>(), std::vector<float>(4, 1.5f));  // (0 + 3) / 2
}

// A folder every rank sees: rank 0 names it after its process id.
class SharedFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Tensor pid = Tensor::from_vector<std::int64_t>({1}, {std::int64_t(::getpid())});
    world->broadcast(pid, 0);
    directory_ = std::filesystem::temp_directory_path() /
                 ("topkformer-mpi-" + std::to_string(pid.to_vector<std::int64_t>()[0]));
    if (world->rank() == 0) {
      std::filesystem::remove_all(directory_);
      data::ListOpsOptions options;
      options.min_length = 4;
      options.max_length = 40;
      options.max_depth = 3;
      data::write_listops_splits(directory_ / "listops", 5, {64, 32, 32}, options);
    }
    world->barrier();
  }
  void TearDown() override {
    world->barrier();
    if (world->rank() == 0) std::filesystem::remove_all(directory_);
  }

  // Dropout off: with it, the ranks' masks differ from one process's by design.
  train::Config config(int steps) const {
    return train::load_config(
        data::project_root() / "configs" / "tests" / "listops_tiny.yaml",
        {"data.dir=" + (directory_ / "listops").string(),
         "data.cache_dir=" + (directory_ / "cache").string(), "runtime.threads=1",
         "model.dropout=0", "attention.dropout=0", "train.steps=" + std::to_string(steps),
         "train.accumulation=2", "train.eval_every=2", "train.save_every=2"});
  }
  train::TrainOptions options(const std::string& run, dist::Communicator* communicator,
                              const std::string& resume = "") const {
    train::TrainOptions result;
    result.run_dir = directory_ / run;
    result.resume = resume;
    result.log_to_console = false;
    result.communicator = communicator;
    return result;
  }

  std::filesystem::path directory_;
};

// Every f32 weight of a checkpoint, in file order.
std::vector<float> weights(const std::filesystem::path& checkpoint) {
  std::vector<float> all;
  for (const auto& [name, tensor] :
       train::read_safetensors(checkpoint / "model.safetensors").tensors) {
    if (tensor.dtype() != DType::f32) continue;
    const std::vector<float> values = tensor.to_vector<float>();
    all.insert(all.end(), values.begin(), values.end());
  }
  return all;
}

// The two ranks' gradients are averaged in a different order than one
// process sums them, so results agree to float rounding, not bit for bit.
void expect_close(const std::vector<float>& a, const std::vector<float>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 2e-5) << "weight " << i;
}

TEST_F(SharedFolderTest, TwoRanksEqualOneRankWithTheSameGlobalBatch) {
  const train::TrainSummary two = train::run_training(config(6), options("two", world));
  if (world->rank() == 0) {
    const train::TrainSummary one = train::run_training(config(6), options("one", nullptr));
    ASSERT_EQ(two.losses.size(), one.losses.size());
    for (std::size_t step = 0; step < one.losses.size(); ++step) {
      EXPECT_NEAR(two.losses[step], one.losses[step], 1e-5) << "step " << step + 1;
    }
    ASSERT_TRUE(two.last_eval && one.last_eval);
    EXPECT_NEAR(two.last_eval->loss, one.last_eval->loss, 1e-5);
    EXPECT_EQ(two.last_eval->examples, one.last_eval->examples);
    EXPECT_EQ(two.last_eval->accuracy, one.last_eval->accuracy);
    expect_close(weights(two.last_checkpoint), weights(one.last_checkpoint));
  }
}

TEST_F(SharedFolderTest, OneRankResumesATwoRankRun) {
  train::run_training(config(4), options("resumed", world));
  if (world->rank() == 0) {
    const train::TrainSummary resumed =
        train::run_training(config(8), options("resumed", nullptr, "auto"));
    const train::TrainSummary straight = train::run_training(config(8), options("one", nullptr));
    ASSERT_EQ(resumed.first_step, 5);
    ASSERT_EQ(resumed.losses.size(), 4u);
    for (std::size_t step = 0; step < 4; ++step) {
      EXPECT_NEAR(resumed.losses[step], straight.losses[4 + step], 1e-5) << "step " << step + 5;
    }
    expect_close(weights(resumed.last_checkpoint), weights(straight.last_checkpoint));
  }
}

// The error run_training throws on this rank (every rank must throw one).
std::string error_on_every_rank(const train::Config& config, const train::TrainOptions& options) {
  try {
    train::run_training(config, options);
  } catch (const Error& error) {
    return error.what();
  }
  ADD_FAILURE() << "rank " << world->rank() << " trained although the ranks differ";
  return "";
}

// Another d_model on rank 1: before the agreement check, the first broadcast
// overran rank 1's smaller buffers (a crash or a heap overflow). Now every
// rank refuses, naming the first differing parameter and the config key.
TEST_F(SharedFolderTest, RanksThatBuildDifferentModelsAreRefusedOnEveryRank) {
  train::Config different = config(2);
  if (world->rank() == 1) different.model.transformer.d_model = 16;
  const std::string message = error_on_every_rank(different, options("different", world));
  EXPECT_NE(message.find("rank 1's model differs from rank 0's: 'encoder.embedding.weight' is "
                         "f32 [17, 16] on rank 1 and f32 [17, 32] on rank 0"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("rank 1's config differs from rank 0's: model.d_model is 16 on rank 1 "
                         "and 32 on rank 0"),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find("'s data differs"), std::string::npos) << message;
}

// The same config but other data on rank 1 (data.dir may differ between
// machines, what it holds may not): refused, naming the training split's size.
TEST_F(SharedFolderTest, RanksThatReadDifferentDataAreRefusedOnEveryRank) {
  const std::filesystem::path smaller = directory_ / "listops-smaller";
  if (world->rank() == 1) {
    data::ListOpsOptions listops;
    listops.min_length = 4;
    listops.max_length = 40;
    listops.max_depth = 3;
    data::write_listops_splits(smaller, 5, {48, 32, 32}, listops);
  }
  train::Config different = config(2);
  if (world->rank() == 1) different.data.dir = smaller.string();
  const std::string message = error_on_every_rank(different, options("data", world));
  EXPECT_NE(message.find("rank 1's data differs from rank 0's: training examples (lm: blocks) is "
                         "48 on rank 1 and 64 on rank 0"),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find("'s model differs"), std::string::npos) << message;
  EXPECT_EQ(message.find("'s config differs"), std::string::npos) << message;
}

}  // namespace
}  // namespace topkformer

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const auto communicator = topkformer::dist::make_mpi_communicator();
  topkformer::world = communicator.get();
  if (communicator->rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  // The job fails when a test failed on any rank.
  topkformer::Tensor failed = topkformer::Tensor::from_vector<std::int32_t>({1}, {RUN_ALL_TESTS()});
  communicator->all_reduce(failed, topkformer::dist::ReduceOp::max);
  return failed.to_vector<std::int32_t>()[0];
}
