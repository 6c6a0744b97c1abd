// The memory planner on the tiny configs: its live peak is the measured peak
// of a real run within 10%, a run trains the same with and without it, and the
// budget search answers monotonically.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "topkformer/attention/config.h"
#include "topkformer/core/allocator.h"
#include "topkformer/data/data_root.h"
#include "topkformer/train/memory_plan.h"
#include "train/trainer_fixture.h"

namespace topkformer::train {
namespace {

// A run of 4 steps with an evaluation at step 2, which falls in the interval
// of a later log line: the logged peaks cover training and evaluation.
const std::vector<std::string> short_run = {"train.steps=4", "train.log_every=1",
                                            "train.eval_every=2", "train.save_every=0"};

// The largest live peak of RUN/metrics.jsonl's train lines, and its plan line.
struct LoggedMemory {
  std::int64_t peak_bytes = 0;
  nlohmann::json plan;
};

LoggedMemory logged_memory(const std::filesystem::path& run) {
  LoggedMemory logged;
  std::ifstream metrics(run / "metrics.jsonl");
  for (std::string text; std::getline(metrics, text);) {
    const auto line = nlohmann::json::parse(text);
    if (line["type"] == "train") {
      logged.peak_bytes = std::max(logged.peak_bytes, line["peak_bytes"].get<std::int64_t>());
    }
    if (line["type"] == "plan") logged.plan = line;
  }
  return logged;
}

class MemoryPlanTest : public TrainerTest {
 protected:
  // Plans `config` (as `topkformer plan` does), runs it, and expects the
  // plan's live peak, and the one the run logged, within 10% of the run's
  // measured peak.
  void expect_plan_within_10_percent(const Config& config, const std::string& name) {
    const std::int64_t predicted = plan_memory(config).run().live;
    run_training(config, options(name));
    const LoggedMemory logged = logged_memory(directory() / name);
    ASSERT_GT(logged.peak_bytes, 0) << name;
    EXPECT_NEAR(double(predicted), double(logged.peak_bytes), 0.1 * double(logged.peak_bytes))
        << name << ": planned " << predicted << " bytes, measured " << logged.peak_bytes;
    ASSERT_TRUE(logged.plan.is_object()) << name << ": no plan line in metrics.jsonl";
    const auto logged_plan = std::max(logged.plan["train"]["peak_bytes"].get<std::int64_t>(),
                                      logged.plan["eval"]["peak_bytes"].get<std::int64_t>());
    EXPECT_NEAR(double(logged_plan), double(logged.peak_bytes), 0.1 * double(logged.peak_bytes))
        << name << ": the run planned " << logged_plan;
  }
};

// The tiny configs with data.max_length short enough that every batch
// reaches it (the plan is of the longest batches: shorter data peaks lower).
TEST_F(MemoryPlanTest, LivePeakIsTheMeasuredOneWithinTenPercent) {
  for (const auto kind : all_values<attention::AttentionKind>()) {
    const std::string name = attention::attention_kind_name(kind);
    std::vector<std::string> overrides = short_run;
    overrides.push_back("attention.kind=" + name);
    overrides.push_back("data.max_length=24");
    expect_plan_within_10_percent(listops_config(overrides), "listops_" + name);
  }
  std::vector<std::string> overrides = short_run;
  overrides.push_back("data.max_length=8");
  expect_plan_within_10_percent(aan_config(overrides), "aan");
}

TEST_F(MemoryPlanTest, LivePeakOfTheDataConfigsIsTheMeasuredOneWithinTenPercent) {
  TKF_SKIP_UNLESS_DATA_FILE(data::data_file("imdb/train.tsv"));
  TKF_SKIP_UNLESS_DATA_FILE(data::data_file("wikitext-103/wiki.train.prefix.tokens"));
  expect_plan_within_10_percent(tiny_config("imdb_tiny", short_run), "imdb");
  std::vector<std::string> overrides = short_run;
  overrides.push_back("data.cache_dir=" + (directory() / "cache").string());
  expect_plan_within_10_percent(tiny_config("wikitext_tiny", overrides), "wikitext");
}

// The dry run uses the trainer's own model before its first step: the
// weights, Performer's features and their redraw counter, and the dropout
// stream are as they were, so the losses are the same bit for bit.
TEST_F(MemoryPlanTest, RunTrainsTheSameWithAndWithoutThePlan) {
  const std::vector<std::vector<std::string>> variants = {
      {},  // top-k attention, dropout 0.1
      {"attention.kind=performer", "attention.feature_redraw_interval=1"}};
  for (std::size_t i = 0; i < variants.size(); ++i) {
    std::vector<std::string> overrides = variants[i];
    overrides.push_back("train.steps=6");
    const Config config = listops_config(overrides);
    TrainOptions planned = options("planned" + std::to_string(i));
    TrainOptions unplanned = options("unplanned" + std::to_string(i));
    unplanned.memory_plan = false;
    const TrainSummary with_plan = run_training(config, planned);
    const TrainSummary without_plan = run_training(config, unplanned);
    EXPECT_EQ(with_plan.losses, without_plan.losses) << "variant " << i;
    ASSERT_TRUE(with_plan.last_eval && without_plan.last_eval);
    EXPECT_EQ(with_plan.last_eval->loss, without_plan.last_eval->loss) << "variant " << i;
  }
}

const VariantBudget& variant(const BudgetPlan& plan, attention::AttentionKind kind) {
  return plan.variants.at(std::size_t(kind));
}

TEST_F(MemoryPlanTest, BudgetSearchAnswersMonotonically) {
  const Config config = listops_config();  // top-k, data.max_length 48, batch 8
  const MemoryPlan plan = plan_memory(config);
  const std::int64_t own = plan.run().resident;  // the CPU's budget holds resident memory
  ASSERT_GT(own, 0);
  // The answers are conservative: reserved/live at least the cache bound
  // (1.1) and a 2% margin, so the config fits a budget 1.1 x 1.02 its own figure.
  const auto tight_budget = std::int64_t(double(own) * CachingAllocator::cache_limit * 1.02) + 1024;
  const BudgetPlan tight = plan_budget(config, plan, tight_budget);
  const BudgetPlan loose = plan_budget(config, plan, own + (std::int64_t{64} << 20));
  ASSERT_EQ(loose.variants.size(), attention::attention_kind_names.size());
  EXPECT_TRUE(loose.resident);
  // The config fits its own predicted figure, with the margins.
  EXPECT_GE(variant(tight, attention::AttentionKind::topk).longest_length, config.data.max_length);
  EXPECT_GE(variant(tight, attention::AttentionKind::topk).largest_batch, config.train.batch_size);
  for (const auto kind : all_values<attention::AttentionKind>()) {
    const std::string name = attention::attention_kind_name(kind);
    EXPECT_GE(variant(loose, kind).longest_length, variant(tight, kind).longest_length) << name;
    EXPECT_GE(variant(loose, kind).largest_batch, variant(tight, kind).largest_batch) << name;
    EXPECT_GT(variant(loose, kind).longest_length, config.data.max_length) << name;
    EXPECT_FALSE(variant(loose, kind).length_capped) << name;
  }
  // Quadratic growth reaches a budget before linear growth does.
  EXPECT_EQ(variant(loose, attention::AttentionKind::vanilla).length_degree, 2);
  EXPECT_LT(variant(loose, attention::AttentionKind::vanilla).longest_length,
            variant(loose, attention::AttentionKind::topk).longest_length);
  EXPECT_LT(variant(loose, attention::AttentionKind::vanilla).longest_length,
            variant(loose, attention::AttentionKind::chunked).longest_length);
}

// The warning `train` logs before its first step: only when the predicted
// peak exceeds what is free plus what the process holds already.
TEST(MemoryPlanFit, WarnsOnlyWhenThePeakExceedsFreePlusHeld) {
  const std::int64_t mib = std::int64_t{1} << 20;
  EXPECT_EQ(fit_warning("resident memory", 100 * mib, 20 * mib, 80 * mib, "this machine"), "");
  const std::string warning =
      fit_warning("resident memory", 101 * mib, 20 * mib, 80 * mib, "this machine");
  for (const char* part : {"101 MiB of resident memory", "this machine", "80 MiB free",
                           "20 MiB held", "plan --memory-budget"}) {
    EXPECT_NE(warning.find(part), std::string::npos) << part << " in: " << warning;
  }
  EXPECT_NE(fit_warning("reserved bytes", 9 * mib, 0, 8 * mib, "cuda:0").find("cuda:0"),
            std::string::npos);
  EXPECT_EQ(fit_warning("reserved bytes", 9 * mib, 0, -1, "cuda:0"), "") << "free unknown";
}

}  // namespace
}  // namespace topkformer::train
