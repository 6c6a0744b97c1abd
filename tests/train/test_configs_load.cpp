// Every config the project ships loads; the paper configs (configs/lra,
// configs/wikitext103) hold the paper's hyperparameters (Tables 4 and 7); the
// attention variants of one task (paper and configs/small) differ only in the
// attention section.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <string>
#include <vector>

#include "topkformer/core/error.h"
#include "topkformer/data/data_root.h"
#include "topkformer/train/config.h"

namespace topkformer::train {
namespace {

namespace fs = std::filesystem;
using attention::AttentionKind;

fs::path configs_dir() {
  return data::project_root() / "configs";
}

// Every *.yaml under configs/, recursively, in a fixed order.
std::vector<fs::path> all_configs() {
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(configs_dir()))
    if (entry.is_regular_file() && entry.path().extension() == ".yaml")
      files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

// Every attention variant has its configs (configs/lra/<task>_<variant>.yaml, ...).
constexpr auto kVariants = attention::attention_kind_names;

Config load_shipped_config(const std::string& relative) {
  const fs::path file = configs_dir() / relative;
  if (!fs::exists(file)) throw Error(file.string() + ": missing");
  return load_config(file);
}

TEST(ConfigsLoad, EveryYamlUnderConfigsLoads) {
  const std::vector<fs::path> files = all_configs();
  // quickstart, four test configs, 12 LRA and 4 WikiText-103 paper configs, 9 small ones.
  EXPECT_GE(files.size(), 30u);
  for (const fs::path& file : files) {
    SCOPED_TRACE(file.string());
    try {
      const Config config = load_config(file);
      // What `topkformer config` prints reads back to the same config.
      EXPECT_EQ(to_yaml(parse_config(to_yaml(config), file.string())), to_yaml(config));
    } catch (const Error& error) {
      ADD_FAILURE() << error.what();
    }
  }
}

// The settings one LRA task shares across its four variant files.
struct LraTask {
  const char* name;
  TaskKind task;
  const char* dir;
  std::int64_t batch_size, max_length;  // max_length: LRA's length + the CLS token
  double learning_rate;
  std::int64_t warmup, steps, eval_every, layers, d_model, d_ff, heads;
};

// Paper Table 4 (§A.1).
constexpr std::array<LraTask, 3> kLraTasks = {{
    {"listops", TaskKind::listops, "data/listops", 16, 2001, 0.02, 1000, 20000, 1000, 6, 512, 2048,
     8},
    {"imdb", TaskKind::text, "${TOPKFORMER_DATA}/imdb", 32, 1001, 0.03, 8000, 40000, 1000, 4, 256,
     1024, 4},
    {"aan", TaskKind::retrieval, "data/aan", 8, 4001, 0.05, 8000, 5000, 500, 4, 128, 512, 4},
}};

TEST(ConfigsLoad, LraConfigsHoldTable4) {
  for (const LraTask& task : kLraTasks) {
    for (std::string_view variant : kVariants) {
      const std::string name =
          std::string("lra/") + task.name + "_" + std::string(variant) + ".yaml";
      SCOPED_TRACE(name);
      const Config c = load_shipped_config(name);
      EXPECT_EQ(c.data.task, task.task);
      EXPECT_EQ(c.data.dir.generic_string(), task.dir);
      EXPECT_EQ(c.data.max_length, task.max_length);
      EXPECT_EQ(c.train.batch_size, task.batch_size);
      EXPECT_EQ(c.optimizer.learning_rate, task.learning_rate);
      EXPECT_EQ(c.schedule.kind, optim::ScheduleKind::rsqrt_decay);
      EXPECT_EQ(c.schedule.warmup_steps, task.warmup);
      EXPECT_EQ(c.train.steps, task.steps);
      EXPECT_EQ(c.train.eval_every, task.eval_every);
      EXPECT_EQ(c.model.transformer.layers, task.layers);
      EXPECT_EQ(c.model.transformer.d_model, task.d_model);
      EXPECT_EQ(c.model.transformer.d_ff, task.d_ff);
      EXPECT_EQ(c.model.transformer.heads, task.heads);
      // LRA's defaults: Adam(0.9, 0.98, eps 1e-9) with weight decay 0.1, CLS pooling.
      EXPECT_EQ(c.optimizer.beta2, 0.98);
      EXPECT_EQ(c.optimizer.weight_decay, 0.1);
      EXPECT_EQ(c.model.pooling, models::Pooling::cls);
      EXPECT_EQ(c.model.transformer.dropout, 0.1);
    }
  }
  const Config topk = load_shipped_config("lra/listops_topk.yaml");
  EXPECT_EQ(topk.model.transformer.attention.kind, AttentionKind::topk);
  EXPECT_EQ(topk.model.transformer.attention.k, 128);
  EXPECT_EQ(topk.train.batch_size, 16);
  EXPECT_EQ(topk.train.steps, 20000);
  const Config imdb = load_shipped_config("lra/imdb_vanilla.yaml");
  EXPECT_EQ(imdb.data.tokenizer, TokenizerKind::byte);
  EXPECT_EQ(imdb.data.valid_file, "test.tsv");  // LRA validates on the test split
  const Config aan = load_shipped_config("lra/aan_performer.yaml");
  EXPECT_EQ(aan.data.train_file, "new_aan_pairs.train.tsv");
  EXPECT_EQ(aan.data.valid_file, "new_aan_pairs.eval.tsv");
  EXPECT_EQ(aan.data.test_file, "new_aan_pairs.test.tsv");
}

TEST(ConfigsLoad, WikiTextConfigsHoldTable7) {
  for (std::string_view variant : kVariants) {
    const std::string name = "wikitext103/lm_" + std::string(variant) + ".yaml";
    SCOPED_TRACE(name);
    const Config c = load_shipped_config(name);
    EXPECT_EQ(c.data.task, TaskKind::lm);
    EXPECT_EQ(c.data.dir.generic_string(), "${TOPKFORMER_DATA}/wikitext-103");
    EXPECT_EQ(c.data.train_file, "wiki.train.tokens");  // the full split, not the local prefix
    EXPECT_EQ(c.data.tokenizer, TokenizerKind::word);
    EXPECT_EQ(c.data.vocab_min_count, 1);
    EXPECT_EQ(c.data.max_length, 1024);
    EXPECT_EQ(c.eval.segment_length, 1024);
    EXPECT_EQ(c.train.batch_size, 64);
    EXPECT_EQ(c.train.steps, 50000);
    EXPECT_EQ(c.optimizer.learning_rate, 5e-4);
    EXPECT_EQ(c.optimizer.beta1, 0.9);
    EXPECT_EQ(c.optimizer.beta2, 0.98);
    EXPECT_EQ(c.optimizer.weight_decay, 0.01);
    EXPECT_EQ(c.optimizer.clip_norm, 0.0);  // CLIP: none
    EXPECT_EQ(c.schedule.kind, optim::ScheduleKind::inverse_sqrt);
    EXPECT_EQ(c.schedule.warmup_steps, 4000);
    EXPECT_EQ(c.model.transformer.layers, 6);
    EXPECT_EQ(c.model.transformer.d_model, 512);
    EXPECT_EQ(c.model.transformer.d_ff, 2048);
    EXPECT_EQ(c.model.transformer.heads, 8);
    EXPECT_EQ(c.model.transformer.dropout, 0.1);
  }
  const Config topk = load_shipped_config("wikitext103/lm_topk.yaml");
  EXPECT_EQ(topk.model.transformer.attention.kind, AttentionKind::topk);
  EXPECT_EQ(topk.model.transformer.attention.k, 64);
}

// Each file's attention.kind is the one its name says, and with the attention
// section set to the vanilla file's, the variant files of a task are one config:
// the paper's four variants, and configs/small's vanilla, topk and performer.
TEST(ConfigsLoad, VariantsDifferOnlyInAttention) {
  struct Family {
    const char* task;
    bool paper;  // paper configs: chunk size 1024, and a chunked variant
  };
  const std::array<Family, 8> families = {{{"lra/listops", true},
                                           {"lra/imdb", true},
                                           {"lra/aan", true},
                                           {"wikitext103/lm", true},
                                           {"small/listops", false},
                                           {"small/imdb", false},
                                           {"small/imdb_bytes", false},
                                           {"small/lm", false}}};
  for (const Family& family : families) {
    const std::string task = family.task;
    const Config vanilla = load_shipped_config(task + "_vanilla.yaml");
    for (const AttentionKind kind : all_values<AttentionKind>()) {
      if (!family.paper && kind == AttentionKind::chunked) continue;
      const std::string name = task + "_" + attention::attention_kind_name(kind) + ".yaml";
      SCOPED_TRACE(name);
      Config config = load_shipped_config(name);
      const attention::AttentionConfig& attention = config.model.transformer.attention;
      EXPECT_EQ(attention.kind, kind);
      if (family.paper &&
          (attention.kind == AttentionKind::chunked || attention.kind == AttentionKind::topk)) {
        EXPECT_EQ(attention.chunk_size, 1024);
      }
      if (attention.kind == AttentionKind::performer) {
        EXPECT_EQ(attention.num_features, 256);
      }
      config.model.transformer.attention = vanilla.model.transformer.attention;
      EXPECT_EQ(to_yaml(config), to_yaml(vanilla));
    }
  }
}

}  // namespace
}  // namespace topkformer::train
