// Run checkpoints: a round trip restores tensors bit for bit and the state
// exactly; NaN is refused before anything is written; a save that fails
// midway leaves the previous checkpoint as the latest; damaged checkpoints
// are skipped; pruning keeps the newest and the best; `best` is a relative link.
#include "topkformer/train/checkpoint.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "data/temporary_folder.h"
#include "test_util.h"
#include "topkformer/core/runtime.h"
#include "topkformer/train/safetensors.h"
#include "train/file_bytes.h"

namespace topkformer::train {
namespace {

namespace fs = std::filesystem;
using testing::expect_error_containing;
using testing::read_bytes;
using testing::tensor_bytes;
using testing::write_bytes;

class Checkpoint : public testing::TemporaryFolderTest {
 protected:
  fs::path dir() const { return directory_ / "checkpoints"; }

  // Folder names in dir(), sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    if (!fs::exists(dir())) return names;
    for (const auto& entry : fs::directory_iterator(dir()))
      names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
};

// Contents whose values depend on `seed`, with every dtype and a state in
// which no field has its default value.
CheckpointContents make_contents(std::int64_t step, std::uint64_t seed = 1) {
  Generator generator(seed);
  CheckpointContents contents;
  const Tensor weight = Tensor::randn({4, 8}, generator);
  contents.model = {
      {"encoder.weight", weight.transpose(0, 1)},  // saved from a non-contiguous view
      {"encoder.bias", Tensor::randn({8}, generator)},
      {"features", Tensor::randn({3, 2}, generator, DType::f64)},
      {"positions", Tensor::arange(0, 5, 1, DType::i64)},
  };
  contents.optimizer = {
      {"step", Tensor::full({}, double(step), DType::i64)},
      {"exp_avg.encoder.weight", Tensor::randn({8, 4}, generator)},
      {"exp_avg_sq.encoder.weight", Tensor::rand({8, 4}, generator)},
      {"mask", Tensor::full({2}, 1, DType::u8)},
      {"counts", Tensor::full({2}, 3, DType::i32)},
  };
  TrainingState& state = contents.state;
  state.step = step;
  state.data = {3, 96};
  state.rng = {std::numeric_limits<std::uint64_t>::max() - seed, 123456789012345ull};
  state.best_metric = 1.0 / 3.0 + double(seed);
  state.best_step = step > 0 ? step - 1 : 0;
  state.evals_without_improvement = 2;
  state.elapsed_seconds = 0.1 + 0.2 + double(step);  // not exactly representable in decimal
  state.config_hash = "00ab" + std::to_string(seed);
  state.version = "9.9.9";
  contents.config_yaml = "model:\n  d_model: 8   # verbatim, comments too\n";
  return contents;
}

// Zero tensors with the dtypes and shapes of `tensors`.
nn::NamedTensors zeros_like(const nn::NamedTensors& tensors) {
  nn::NamedTensors zeros;
  for (const auto& [name, tensor] : tensors)
    zeros.emplace_back(name, Tensor::zeros(tensor.shape(), tensor.dtype()));
  return zeros;
}

void expect_same_state(const TrainingState& actual, const TrainingState& expected) {
  EXPECT_EQ(actual.step, expected.step);
  EXPECT_EQ(actual.data, expected.data);
  EXPECT_EQ(actual.rng.seed, expected.rng.seed);
  EXPECT_EQ(actual.rng.offset, expected.rng.offset);
  EXPECT_EQ(actual.best_metric, expected.best_metric);  // exact, not approximately
  EXPECT_EQ(actual.best_step, expected.best_step);
  EXPECT_EQ(actual.evals_without_improvement, expected.evals_without_improvement);
  EXPECT_EQ(actual.elapsed_seconds, expected.elapsed_seconds);
  EXPECT_EQ(actual.config_hash, expected.config_hash);
  EXPECT_EQ(actual.version, expected.version);
  EXPECT_TRUE(actual == expected);
}

void expect_same_tensors(const nn::NamedTensors& actual, const nn::NamedTensors& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t i = 0; i < actual.size(); ++i)
    EXPECT_EQ(tensor_bytes(actual[i].second), tensor_bytes(expected[i].second))
        << expected[i].first;
}

// Loads `checkpoint` into fresh tensors shaped like `like` and checks it all.
void expect_loads(const fs::path& checkpoint, const CheckpointContents& like) {
  const nn::NamedTensors model = zeros_like(like.model);
  const nn::NamedTensors optimizer = zeros_like(like.optimizer);
  expect_same_state(load_checkpoint(checkpoint, model, optimizer), like.state);
  expect_same_tensors(model, like.model);
  expect_same_tensors(optimizer, like.optimizer);
}

TEST(CheckpointName, PadsStepsToSevenDigits) {
  EXPECT_EQ(checkpoint_name(0), "step_0000000");
  EXPECT_EQ(checkpoint_name(42), "step_0000042");
  EXPECT_EQ(checkpoint_name(123456789), "step_123456789");
  EXPECT_THROW(checkpoint_name(-1), Error);
}

TEST_F(Checkpoint, RoundTripIsExact) {
  const CheckpointContents contents = make_contents(42);
  const fs::path written = write_checkpoint(dir(), contents);
  EXPECT_EQ(written, dir() / "step_0000042");
  for (const char* file :
       {"model.safetensors", "optimizer.safetensors", "state.yaml", "config.yaml"})
    EXPECT_TRUE(fs::is_regular_file(written / file)) << file;
  EXPECT_EQ(entries(), std::vector<std::string>{"step_0000042"}) << "no temporary left";
  EXPECT_EQ(read_bytes(written / "config.yaml"), contents.config_yaml);

  expect_loads(written, contents);
  expect_same_state(read_training_state(written), contents.state);
  std::string why;
  EXPECT_TRUE(verify_checkpoint(written, &why)) << why;
  EXPECT_EQ(latest_checkpoint(dir()), written);
}

TEST_F(Checkpoint, StateEdgeValuesRoundTrip) {
  CheckpointContents contents = make_contents(7);
  contents.state.best_metric.reset();
  contents.state.elapsed_seconds = std::numeric_limits<double>::denorm_min();
  contents.state.version.clear();
  contents.state.config_hash = "";
  const fs::path written = write_checkpoint(dir(), contents);
  contents.state.version = version();  // an empty version records the writer's
  expect_same_state(read_training_state(written), contents.state);
  EXPECT_NE(read_bytes(written / "state.yaml").find("best_metric: ~"), std::string::npos);

  contents.state.best_metric = -std::numeric_limits<double>::infinity();
  contents.state.elapsed_seconds = 1e300;
  const fs::path rewritten = write_checkpoint(dir(), contents);
  expect_same_state(read_training_state(rewritten), contents.state);
  // Floats keep a decimal point, so that YAML 1.1 readers (PyYAML) see floats too.
  const std::string text = read_bytes(rewritten / "state.yaml");
  EXPECT_NE(text.find("best_metric: -.inf\n"), std::string::npos) << text;
  EXPECT_NE(text.find("elapsed_seconds: 1.0e+300\n"), std::string::npos) << text;
}

TEST_F(Checkpoint, NonFiniteValuesAreRefusedBeforeWriting) {
  CheckpointContents contents = make_contents(5);
  contents.model[1].second.data<float>()[3] = std::numeric_limits<float>::quiet_NaN();
  expect_error_containing([&] { write_checkpoint(dir(), contents); },
                          {"model tensor 'encoder.bias'", "nan", "element 3", "not written"});
  EXPECT_EQ(entries(), std::vector<std::string>{});

  contents = make_contents(5);
  contents.optimizer[2].second.data<float>()[0] = std::numeric_limits<float>::infinity();
  expect_error_containing([&] { write_checkpoint(dir(), contents); },
                          {"optimizer tensor 'exp_avg_sq.encoder.weight'", "inf"});
  EXPECT_EQ(entries(), std::vector<std::string>{});
}

TEST_F(Checkpoint, FailureMidSaveKeepsThePreviousCheckpoint) {
  const CheckpointContents first = make_contents(10, 1);
  write_checkpoint(dir(), first);
  std::vector<std::string> completed;
  const auto crash_after_model = [&](const std::string& file) {
    completed.push_back(file);
    if (file == "model.safetensors") throw std::runtime_error("simulated crash");
  };
  EXPECT_THROW(write_checkpoint(dir(), make_contents(20, 2), crash_after_model),
               std::runtime_error);
  EXPECT_EQ(completed,
            (std::vector<std::string>{"state.yaml", "config.yaml", "model.safetensors"}));
  EXPECT_EQ(entries(), std::vector<std::string>{"step_0000010"}) << "the temporary is removed";
  EXPECT_EQ(latest_checkpoint(dir()), dir() / "step_0000010");
  expect_loads(dir() / "step_0000010", first);
}

TEST_F(Checkpoint, CrashLeftoversAreIgnoredAndPruned) {
  const CheckpointContents first = make_contents(10, 1);
  write_checkpoint(dir(), first);
  // What a process killed mid-save leaves: a temporary folder holding some files.
  const fs::path leftover = dir() / ".tmp-step_0000020-99999";
  fs::create_directories(leftover);
  fs::copy_file(dir() / "step_0000010" / "model.safetensors", leftover / "model.safetensors");
  EXPECT_EQ(latest_checkpoint(dir()), dir() / "step_0000010");
  prune_checkpoints(dir(), 5, -1);
  EXPECT_EQ(entries(), std::vector<std::string>{"step_0000010"});
}

TEST_F(Checkpoint, DamagedNewestCheckpointsAreSkipped) {
  const CheckpointContents good = make_contents(10, 1);
  write_checkpoint(dir(), good);
  // Newer ones, each damaged in a different way.
  for (const std::int64_t step : {20, 30, 40, 50}) write_checkpoint(dir(), make_contents(step));
  const fs::path flipped = dir() / "step_0000020" / "optimizer.safetensors";
  std::string bytes = read_bytes(flipped);
  bytes[bytes.size() - 1] ^= 0x10;
  write_bytes(flipped, bytes);
  fs::remove(dir() / "step_0000030" / "config.yaml");
  const fs::path edited = dir() / "step_0000040" / "state.yaml";
  write_bytes(edited, read_bytes(edited) + "# edited\n");
  const fs::path truncated = dir() / "step_0000050" / "model.safetensors";
  fs::resize_file(truncated, fs::file_size(truncated) - 1);

  std::string why;
  EXPECT_FALSE(verify_checkpoint(dir() / "step_0000020", &why));
  EXPECT_NE(why.find(flipped.string() + ": tensor 'counts': checksum mismatch"), std::string::npos)
      << why;
  EXPECT_FALSE(verify_checkpoint(dir() / "step_0000030", &why));
  EXPECT_NE(why.find("config.yaml"), std::string::npos) << why;
  EXPECT_FALSE(verify_checkpoint(dir() / "step_0000040", &why));
  EXPECT_NE(why.find(edited.string() + ": checksum mismatch"), std::string::npos) << why;
  EXPECT_FALSE(verify_checkpoint(dir() / "step_0000050", &why));
  EXPECT_NE(why.find("truncated"), std::string::npos) << why;
  EXPECT_FALSE(verify_checkpoint(dir() / "step_0000060", &why));

  EXPECT_EQ(latest_checkpoint(dir()), dir() / "step_0000010");
  expect_error_containing(
      [&] {
        load_checkpoint(dir() / "step_0000020", zeros_like(good.model), zeros_like(good.optimizer));
      },
      {"checksum mismatch"});
  fs::remove_all(dir() / "step_0000010");
  EXPECT_EQ(latest_checkpoint(dir()), std::nullopt);
  EXPECT_EQ(latest_checkpoint(directory_ / "nowhere"), std::nullopt);
}

TEST_F(Checkpoint, NewestIsByStepNumberNotName) {
  write_checkpoint(dir(), make_contents(9999999));
  write_checkpoint(dir(), make_contents(10000000));
  write_checkpoint(dir(), make_contents(800));
  fs::create_directories(dir() / "step_x");  // not a checkpoint name: ignored
  EXPECT_EQ(latest_checkpoint(dir()), dir() / "step_10000000");
}

TEST_F(Checkpoint, SavingAStepAgainReplacesIt) {
  write_checkpoint(dir(), make_contents(10, 1));
  const CheckpointContents second = make_contents(10, 2);
  write_checkpoint(dir(), second);
  EXPECT_EQ(entries(), std::vector<std::string>{"step_0000010"});
  expect_loads(dir() / "step_0000010", second);
}

TEST_F(Checkpoint, LoadChecksNamesDtypesAndShapes) {
  const CheckpointContents contents = make_contents(3);
  const fs::path written = write_checkpoint(dir(), contents);
  const std::string model_path = (written / "model.safetensors").string();
  const std::string optimizer_path = (written / "optimizer.safetensors").string();

  // The model file may hold tensors the model does not ask for.
  nn::NamedTensors model = zeros_like(contents.model);
  model.pop_back();
  EXPECT_NO_THROW(load_checkpoint(written, model, zeros_like(contents.optimizer)));

  model = zeros_like(contents.model);
  model.emplace_back("extra.weight", Tensor::zeros({2}));
  expect_error_containing([&] { load_checkpoint(written, model, zeros_like(contents.optimizer)); },
                          {model_path + ": tensor 'extra.weight' is missing from the file"});

  // Optimizer state must match both ways; nothing is loaded when it does not.
  model = zeros_like(contents.model);
  nn::NamedTensors optimizer = zeros_like(contents.optimizer);
  optimizer.pop_back();
  expect_error_containing([&] { load_checkpoint(written, model, optimizer); },
                          {optimizer_path, "'counts'", "nothing here loads"});
  EXPECT_EQ(tensor_bytes(model[0].second), tensor_bytes(Tensor::zeros({8, 4})))
      << "the model is unchanged";
  optimizer = zeros_like(contents.optimizer);
  optimizer[1].second = Tensor::zeros({4, 8});
  expect_error_containing(
      [&] { load_checkpoint(written, zeros_like(contents.model), optimizer); },
      {optimizer_path + ": tensor 'exp_avg.encoder.weight': shape [8, 4] in the file, [4, 8]"});
}

TEST_F(Checkpoint, StateYamlErrorsNameTheFile) {
  const fs::path written = write_checkpoint(dir(), make_contents(3));
  const fs::path state = written / "state.yaml";
  write_bytes(state, "step: [1\n");
  expect_error_containing([&] { read_training_state(written); },
                          {state.string(), "not valid YAML"});
  write_bytes(state, "step: 1\n");
  expect_error_containing([&] { read_training_state(written); }, {state.string(), "data: missing"});
  write_checkpoint(dir(), make_contents(4));
  const std::string text = read_bytes(dir() / "step_0000004" / "state.yaml");
  const std::size_t at = text.find("offset: ");
  write_bytes(state, text.substr(0, at) + "offset: -1\n" + text.substr(text.find('\n', at) + 1));
  expect_error_containing([&] { read_training_state(written); },
                          {state.string() + ":", "rng.offset: expected a non-negative integer"});
  write_bytes(state, text + "surprise: 1\n");
  expect_error_containing([&] { read_training_state(written); },
                          {state.string() + ":", "surprise: unknown key"});
}

TEST_F(Checkpoint, PruneKeepsTheNewestAndTheBest) {
  for (const std::int64_t step : {10, 20, 30, 40, 50}) write_checkpoint(dir(), make_contents(step));
  mark_best_checkpoint(dir(), 20);
  prune_checkpoints(dir(), 0, -1);  // keep_last <= 0 keeps all
  EXPECT_EQ(entries().size(), 6u);
  prune_checkpoints(dir(), 2, 20);
  EXPECT_EQ(entries(),
            (std::vector<std::string>{"best", "step_0000020", "step_0000040", "step_0000050"}));
  prune_checkpoints(dir(), 1, 50);
  EXPECT_EQ(entries(), (std::vector<std::string>{"best", "step_0000050"}));
}

// Damaged checkpoints must not fill keep_last: with every older step_*
// damaged, a fresh save is kept (it used to be deleted right after writing).
TEST_F(Checkpoint, DamagedCheckpointsDoNotCountTowardsKeepLast) {
  for (const std::int64_t step : {10, 20, 30}) write_checkpoint(dir(), make_contents(step));
  for (const char* name : {"step_0000010", "step_0000020", "step_0000030"}) {
    fs::remove(dir() / name / "config.yaml");
  }
  write_checkpoint(dir(), make_contents(5));
  prune_checkpoints(dir(), 2, -1, 5);
  // Kept: step 5 (fresh); the damaged newer ones stay for inspection.
  EXPECT_EQ(entries(), (std::vector<std::string>{"step_0000005", "step_0000010", "step_0000020",
                                                 "step_0000030"}));
  // A good one newer than the damaged: keep_last 2 keeps 40 and 5; 10-30 lie
  // between them (damaged, newer than the oldest kept) and stay.
  write_checkpoint(dir(), make_contents(40));
  write_checkpoint(dir(), make_contents(2));
  prune_checkpoints(dir(), 2, -1, 40);
  EXPECT_EQ(entries(), (std::vector<std::string>{"step_0000005", "step_0000010", "step_0000020",
                                                 "step_0000030", "step_0000040"}));
  EXPECT_EQ(latest_checkpoint(dir()), dir() / "step_0000040");
}

// A prune stopped midway (as by kill -9) leaves every step_* folder complete:
// folders are renamed out of the way before they are deleted.
TEST_F(Checkpoint, PruneStoppedMidwayLeavesNoHalfDeletedCheckpoint) {
  for (const std::int64_t step : {10, 20, 30}) write_checkpoint(dir(), make_contents(step));
  const auto kill_midway = [](const fs::path& doomed) {
    fs::remove(doomed / "model.safetensors");  // remove_all got this far
    throw std::runtime_error("killed");
  };
  EXPECT_THROW(prune_checkpoints(dir(), 1, -1, 30, kill_midway), std::runtime_error);
  for (const std::string& name : entries()) {
    if (!name.starts_with("step_")) continue;
    std::string why;
    EXPECT_TRUE(verify_checkpoint(dir() / name, &why)) << name << ": " << why;
  }
  prune_checkpoints(dir(), 1, -1, 30);  // the next prune clears the remnant
  EXPECT_EQ(entries(), std::vector<std::string>{"step_0000030"});
}

TEST_F(Checkpoint, BestIsARelativeLinkReplacedInPlace) {
  for (const std::int64_t step : {10, 20}) write_checkpoint(dir(), make_contents(step));
  mark_best_checkpoint(dir(), 10);
  ASSERT_TRUE(fs::is_symlink(dir() / "best"));
  EXPECT_EQ(fs::read_symlink(dir() / "best"), "step_0000010");
  mark_best_checkpoint(dir(), 20);
  EXPECT_EQ(fs::read_symlink(dir() / "best"), "step_0000020");
  EXPECT_EQ(read_training_state(dir() / "best").step, 20);
  EXPECT_EQ(entries(), (std::vector<std::string>{"best", "step_0000010", "step_0000020"}));
  expect_error_containing([&] { mark_best_checkpoint(dir(), 30); },
                          {"step_0000030", "no such checkpoint"});
  EXPECT_EQ(fs::read_symlink(dir() / "best"), "step_0000020");
  EXPECT_EQ(latest_checkpoint(dir()), dir() / "step_0000020");
  // The whole run folder can move: the link is relative.
  fs::rename(dir(), directory_ / "moved");
  EXPECT_EQ(read_training_state(directory_ / "moved" / "best").step, 20);
}

}  // namespace
}  // namespace topkformer::train
