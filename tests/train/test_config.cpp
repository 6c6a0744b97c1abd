#include "topkformer/train/config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>

#include "data/temporary_folder.h"
#include "topkformer/attention/config.h"
#include "topkformer/core/device.h"
#include "topkformer/core/error.h"
#include "topkformer/data/data_root.h"
#include "train/config_schema.h"

namespace topkformer::train {
namespace {

// The message of the Error `body` throws ("no error" when it throws none).
std::string error_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const Error& error) {
    return error.what();
  }
  return "no error";
}

// EXPECT_EQ on the start of a long message.
#define EXPECT_PREFIX(text, prefix)                                        \
  do {                                                                     \
    const std::string tkf_prefix = (prefix);                               \
    EXPECT_EQ(std::string(text).substr(0, tkf_prefix.size()), tkf_prefix); \
  } while (0)

std::string parse_error(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  return error_of([&] { parse_config(yaml, "x.yaml", overrides); });
}

TEST(Config, EmptyTextMeansDefaults) {
  for (const std::string yaml : {"", "# only a comment\n", "model:\nattention:\n"}) {
    const Config config = parse_config(yaml, "x.yaml");
    EXPECT_EQ(to_yaml(config), to_yaml(Config{})) << yaml;
    EXPECT_EQ(config.source, "x.yaml");
  }
  const Config config = parse_config("", "x.yaml");
  EXPECT_EQ(config.model.transformer.layers, 2);
  EXPECT_EQ(config.model.transformer.d_model, 128);
  EXPECT_EQ(config.model.max_length, 0);  // derived from data.max_length by the trainer
  EXPECT_EQ(config.model.transformer.attention.kind, attention::AttentionKind::vanilla);
  EXPECT_EQ(config.model.transformer.feed_forward.kind, nn::FeedForwardKind::dense);
  EXPECT_EQ(config.data.task, TaskKind::listops);
  EXPECT_EQ(config.optimizer.kind, OptimizerKind::adamw);
  EXPECT_EQ(config.optimizer.no_decay, (std::vector<std::string>{"*.bias", "*norm*"}));
  EXPECT_EQ(config.train.steps, 1000);
  EXPECT_EQ(config.runtime.device, "cpu");
}

TEST(Config, ReadsEveryKindOfValue) {
  const Config config = parse_config(R"(
model:
  layers: 6
  dropout: 0.25
  pre_layer_norm: false
  positions: sinusoidal
attention:
  kind: topk
  k: 32
feedforward:
  activation: gelu
data:
  task: lm
  dir: /somewhere/wikitext
  tokenizer: word
optimizer:
  learning_rate: 5e-4
  no_decay: [bias, "*norm*"]
schedule:
  kind: cosine
runtime:
  seed: 18446744073709551615
)",
                                     "x.yaml");
  EXPECT_EQ(config.model.transformer.layers, 6);
  EXPECT_EQ(config.model.transformer.dropout, 0.25);
  EXPECT_FALSE(config.model.transformer.pre_layer_norm);
  EXPECT_EQ(config.model.positions, nn::PositionKind::sinusoidal);
  EXPECT_EQ(config.model.transformer.attention.kind, attention::AttentionKind::topk);
  EXPECT_EQ(config.model.transformer.attention.k, 32);
  EXPECT_EQ(config.model.transformer.feed_forward.activation, nn::Activation::gelu);
  EXPECT_EQ(config.data.task, TaskKind::lm);
  EXPECT_EQ(config.data.dir, "/somewhere/wikitext");
  EXPECT_EQ(config.data.tokenizer, TokenizerKind::word);
  EXPECT_EQ(config.optimizer.learning_rate, 5e-4);
  EXPECT_EQ(config.optimizer.no_decay, (std::vector<std::string>{"bias", "*norm*"}));
  EXPECT_EQ(config.schedule.kind, optim::ScheduleKind::cosine);
  EXPECT_EQ(config.runtime.seed, 18446744073709551615ULL);
}

TEST(Config, UnknownKeysAndSections) {
  EXPECT_EQ(parse_error("attention:\n  kind: topk\n  topk: 3\n"),
            "x.yaml:3: attention.topk: unknown key (known keys of attention: kind, k, chunk_size, "
            "num_features, feature_redraw_interval, dropout)");
  EXPECT_EQ(parse_error("attention:\n  kinds: topk\n"),
            "x.yaml:2: attention.kinds: unknown key; did you mean 'kind'? (known keys of "
            "attention: kind, k, chunk_size, num_features, feature_redraw_interval, dropout)");
  EXPECT_PREFIX(parse_error("schedule:\n  warmup: 3\n"),
                "x.yaml:2: schedule.warmup: unknown key; did you mean 'warmup_steps'? (");
  EXPECT_EQ(parse_error("model:\n  layers: 2\noptimiser:\n  kind: sgd\n"),
            "x.yaml:3: optimiser: unknown section; did you mean 'optimizer'? (known sections: "
            "model, attention, feedforward, data, optimizer, schedule, train, eval, runtime)");
}

TEST(Config, WrongTypes) {
  EXPECT_EQ(parse_error("train:\n  steps: ten\n"),
            "x.yaml:2: train.steps: expected an integer, got 'ten'");
  EXPECT_EQ(parse_error("train:\n  steps: 1.5\n"),
            "x.yaml:2: train.steps: expected an integer, got '1.5'");
  EXPECT_EQ(parse_error("train:\n  steps:\n"),
            "x.yaml:2: train.steps: expected an integer, got nothing");
  EXPECT_EQ(parse_error("train:\n  steps: [1, 2]\n"),
            "x.yaml:2: train.steps: expected an integer, got a list");
  EXPECT_EQ(parse_error("runtime:\n  seed: -1\n"),
            "x.yaml:2: runtime.seed: expected an integer >= 0, got '-1'");
  EXPECT_EQ(parse_error("optimizer:\n  learning_rate: fast\n"),
            "x.yaml:2: optimizer.learning_rate: expected a number, got 'fast'");
  EXPECT_EQ(parse_error("optimizer:\n  clip_norm: inf\n"),
            "x.yaml:2: optimizer.clip_norm: expected a finite number, got 'inf'");
  EXPECT_EQ(parse_error("model:\n  tie_embeddings: yes\n"),
            "x.yaml:2: model.tie_embeddings: expected true or false, got 'yes'");
  EXPECT_EQ(parse_error("data:\n  vocab: {a: 1}\n"),
            "x.yaml:2: data.vocab: expected a string, got a map");
  EXPECT_EQ(parse_error("optimizer:\n  no_decay: bias\n"),
            "x.yaml:2: optimizer.no_decay: expected a list of strings such as [a, b], got 'bias'");
}

TEST(Config, BadChoices) {
  EXPECT_EQ(parse_error("model:\n  layers: 2\nattention:\n  kind: topK\n"),
            "x.yaml:4: attention.kind: expected one of " +
                join_names(attention::attention_kind_names) + ", got 'topK'");
  EXPECT_EQ(parse_error("data:\n  task: imdb\n"),
            "x.yaml:2: data.task: expected one of listops|text|retrieval|lm, got 'imdb'");
  EXPECT_EQ(parse_error("runtime:\n  precision: fp16\n"),
            "x.yaml:2: runtime.precision: expected one of fp32|tf32|bf16, got 'fp16'");
  EXPECT_EQ(parse_error("eval:\n  split: train\n"),
            "x.yaml:2: eval.split: expected one of valid|test, got 'train'");
  EXPECT_EQ(parse_error("runtime:\n  device: gpu\n"),
            "x.yaml:2: runtime.device: device: expected cpu, cuda or cuda:N, got 'gpu'");
}

TEST(Config, DeviceIndexTooLargeForAnInt) {
  // Was "stoi" (std::out_of_range), naming neither the key nor the value.
  EXPECT_EQ(parse_error("runtime:\n  device: cuda:99999999999999999999\n"),
            "x.yaml:2: runtime.device: device: the index of 'cuda:99999999999999999999' is out "
            "of range (at most 2147483647)");
  EXPECT_EQ(parse_error("", {"runtime.device=cuda:2147483648"}),
            "--set runtime.device=cuda:2147483648: runtime.device: device: the index of "
            "'cuda:2147483648' is out of range (at most 2147483647)");
  EXPECT_EQ(Device::parse("cuda:2147483647"), Device::cuda(2147483647));
}

TEST(Config, OutOfRange) {
  EXPECT_EQ(parse_error("attention:\n  k: 0\n"), "x.yaml:2: attention.k: must be >= 1, got 0");
  EXPECT_EQ(parse_error("model:\n  dropout: 1\n"),
            "x.yaml:2: model.dropout: must be in [0, 1), got 1.0");
  EXPECT_EQ(parse_error("optimizer:\n  learning_rate: 0\n"),
            "x.yaml:2: optimizer.learning_rate: must be > 0, got 0.0");
  EXPECT_EQ(parse_error("train:\n  eval_every: -5\n"),
            "x.yaml:2: train.eval_every: must be >= 0, got -5");
  EXPECT_EQ(parse_error("data:\n  train_file: ''\n"),
            "x.yaml:2: data.train_file: must not be empty");
  EXPECT_EQ(parse_error("data:\n  dir: ${HOME}/data\n"),
            "x.yaml:2: data.dir: only ${TOPKFORMER_DATA} is expanded, got '${HOME}/data'");
}

TEST(Config, RulesBetweenKeys) {
  // The error points at the key of the rule that was set last.
  EXPECT_EQ(parse_error("model:\n  d_model: 128\n  heads: 3\n"),
            "x.yaml:3: model.heads: must divide model.d_model (128), got 3");
  EXPECT_EQ(parse_error("model:\n  heads: 3\n  d_model: 100\n"),
            "x.yaml:3: model.heads: must divide model.d_model (100), got 3");
  EXPECT_EQ(parse_error("train:\n  batch_size: 32\n  accumulation: 3\n"),
            "x.yaml:3: train.accumulation: must divide train.batch_size (32), got 3");
  EXPECT_EQ(parse_error("data:\n  tokenizer: sentencepiece\n"),
            "x.yaml:2: data.tokenizer: sentencepiece needs data.vocab (the .model file), which is "
            "empty");
  EXPECT_EQ(parse_error("runtime:\n  precision: bf16\n"),
            "x.yaml:2: runtime.precision: bf16 needs a cuda device, got cpu");
  EXPECT_NO_THROW(parse_config("runtime:\n  device: cuda\n  precision: bf16\n", "x.yaml"));
  const Config on_gpu_1 = parse_config("runtime:\n  device: cuda:1\n  precision: tf32\n", "x.yaml");
  EXPECT_EQ(parse_config(to_yaml(on_gpu_1), "y.yaml").runtime.device, "cuda:1");
  EXPECT_EQ(parse_error("runtime:\n  distributed: nccl\n"),
            "x.yaml:2: runtime.distributed: nccl needs a cuda device, got cpu");
  EXPECT_EQ(parse_error("model:\n  max_length: 512\n"),
            "x.yaml:2: model.max_length: must be 0 or cover data.max_length (2000), got 512");
  EXPECT_EQ(parse_error("data:\n  task: lm\n  max_length: 256\nmodel:\n  max_length: 512\n"),
            "x.yaml:5: model.max_length: must be 0 or cover eval.segment_length (1024), got 512");
  EXPECT_EQ(parse_error("train:\n  best_metric: perplexity\n"),
            "x.yaml:2: train.best_metric: perplexity needs data.task lm, got listops");
  EXPECT_EQ(
      parse_error("optimizer:\n  learning_rate: 0.001\nschedule:\n  kind: cosine\n  "
                  "min_learning_rate: 0.01\n"),
      "x.yaml:5: schedule.min_learning_rate: must be <= optimizer.learning_rate (0.001) for a "
      "decaying schedule, got 0.01");
  // A rule broken by an override is reported there.
  EXPECT_EQ(parse_error("model:\n  heads: 4\n", {"model.d_model=130"}),
            "--set model.d_model=130: model.heads: must divide model.d_model (130), got 4");
}

TEST(Config, MalformedFiles) {
  EXPECT_EQ(parse_error("model:\n  layers: 2\n  layers: 3\n"),
            "x.yaml:3: model.layers: given twice (first on line 2)");
  EXPECT_EQ(parse_error("model:\n  layers: 2\nmodel:\n  d_model: 64\n"),
            "x.yaml:3: model: given twice (first on line 1)");
  EXPECT_EQ(parse_error("model: big\n"), "x.yaml:1: model: expected a map of keys, got 'big'");
  EXPECT_EQ(parse_error("model:\n  - layers\n"),
            "x.yaml:2: model: expected a map of keys, got a list");
  EXPECT_EQ(parse_error("hello\n"),
            "x.yaml:1: expected a map of sections (model, attention, feedforward, data, "
            "optimizer, schedule, train, eval, runtime), got 'hello'");
  EXPECT_EQ(parse_error("model:\n  layers: 2\n---\ntrain:\n  steps: 3\n"),
            "x.yaml:4: expected one YAML document, got 2");
}

TEST(Config, YamlSyntaxErrorNamesTheLine) {
  EXPECT_EQ(parse_error("model:\n  layers: 2\n  d_ff: [1, 2\ntrain:\n  steps: 3\n"),
            "x.yaml:4: invalid YAML: end of sequence flow not found");
  EXPECT_EQ(parse_error("model:\n  layers: 2\n d_ff: 3\n"),
            "x.yaml:3: invalid YAML: end of map not found");
}

TEST(Config, OverridesApplyInOrderAfterTheFile) {
  const Config config =
      parse_config("attention:\n  k: 16\n", "x.yaml",
                   {"attention.k=32", "attention.k=64", "optimizer.no_decay=[a, '*.b']",
                    "data.dir=/x/y", "data.vocab=", "train.steps = 7"});
  EXPECT_EQ(config.model.transformer.attention.k, 64);
  EXPECT_EQ(config.optimizer.no_decay, (std::vector<std::string>{"a", "*.b"}));
  EXPECT_EQ(config.data.dir, "/x/y");
  EXPECT_EQ(config.data.vocab, "");
  EXPECT_EQ(config.train.steps, 7);
  // An override can repair what the file's rules would reject.
  EXPECT_EQ(parse_config("data:\n  tokenizer: sentencepiece\n", "x.yaml", {"data.vocab=m.model"})
                .data.vocab,
            "m.model");
}

TEST(Config, OverrideErrorsNameTheOverride) {
  EXPECT_EQ(parse_error("", {"attention.k=0"}),
            "--set attention.k=0: attention.k: must be >= 1, got 0");
  EXPECT_EQ(parse_error("", {"attention.kind=topK"}),
            "--set attention.kind=topK: attention.kind: expected one of " +
                join_names(attention::attention_kind_names) + ", got 'topK'");
  EXPECT_PREFIX(parse_error("", {"attention.topk=3"}),
                "--set attention.topk=3: attention.topk: unknown key (known keys of attention:");
  EXPECT_PREFIX(parse_error("", {"atention.k=3"}),
                "--set atention.k=3: atention: unknown section; did you mean 'attention'?");
  EXPECT_EQ(parse_error("", {"attention.k"}),
            "--set attention.k: expected section.key=value, e.g. attention.k=64");
  EXPECT_EQ(parse_error("", {"k=3"}), "--set k=3: expected section.key=value, e.g. attention.k=64");
  EXPECT_EQ(parse_error("", {"attention.=3"}),
            "--set attention.=3: expected section.key=value, e.g. attention.k=64");
  EXPECT_PREFIX(parse_error("", {"optimizer.no_decay=[a,"}),
                "--set optimizer.no_decay=[a,: optimizer.no_decay: invalid YAML value: ");
}

TEST(Config, ToYamlRoundTripsExactly) {
  Config config = parse_config(
      "", "x.yaml",
      {"model.layers=3", "model.pooling=cls", "model.max_length=4096", "attention.kind=performer",
       "attention.dropout=0.1", "feedforward.kind=topk", "data.task=retrieval",
       "data.tokenizer=byte", "optimizer.kind=sgd", "schedule.kind=linear",
       "train.best_metric=loss", "eval.split=test", "runtime.seed=42"});
  config.optimizer.learning_rate = 0.1 + 0.2;  // 0.30000000000000004: needs all 17 digits
  config.optimizer.eps = 1e-300;
  config.optimizer.beta2 = 0.9999999999999999;
  config.model.transformer.dropout = 1.0 / 3.0;
  config.data.dir = "${TOPKFORMER_DATA}/aan";
  config.data.vocab = "odd \"name\": #1\\";
  config.data.cache_dir = "123";
  config.optimizer.no_decay = {"*.bias", "true", "", "a, b", "[x]"};
  const std::string yaml = to_yaml(config);
  const Config back = parse_config(yaml, "back.yaml");
  EXPECT_EQ(to_yaml(back), yaml);
  EXPECT_EQ(back.optimizer.learning_rate, 0.1 + 0.2);
  EXPECT_EQ(back.optimizer.eps, 1e-300);
  EXPECT_EQ(back.optimizer.beta2, 0.9999999999999999);
  EXPECT_EQ(back.model.transformer.dropout, 1.0 / 3.0);
  EXPECT_EQ(back.data.dir, "${TOPKFORMER_DATA}/aan");  // kept raw: configs stay portable
  EXPECT_EQ(back.data.vocab, config.data.vocab);
  EXPECT_EQ(back.data.cache_dir, "123");
  EXPECT_EQ(back.optimizer.no_decay, config.optimizer.no_decay);
  EXPECT_EQ(back.model.max_length, 4096);
  EXPECT_EQ(back.data.task, TaskKind::retrieval);
  EXPECT_EQ(back.runtime.seed, 42u);
}

const schema::Key& key_named(const std::string& path) {
  const auto& keys = schema::keys();
  return *std::find_if(keys.begin(), keys.end(),
                       [&](const auto& key) { return key.path() == path; });
}

// Every choice key reads each name of its table and writes it back, and
// rejects any other naming them all; its names are the table's.
TEST(Config, EveryChoiceRoundTrips) {
  std::vector<std::string> choice_keys;
  for (const schema::Key& key : schema::keys()) {
    if (key.choices.empty()) continue;
    SCOPED_TRACE(key.path());
    choice_keys.push_back(key.path());
    for (const std::string& name : key.choices) {
      Config config;
      EXPECT_EQ(key.read(config, YAML::Node(name)), "");
      EXPECT_EQ(key.write(config), name);
      EXPECT_EQ(key.check(config), "");
    }
    Config config;
    EXPECT_EQ(key.read(config, YAML::Node("Bogus")),
              "expected one of " + schema::join(key.choices, "|") + ", got 'Bogus'");
  }
  EXPECT_EQ(choice_keys,
            (std::vector<std::string>{"model.positions", "model.pooling", "attention.kind",
                                      "feedforward.kind", "feedforward.activation", "data.task",
                                      "data.tokenizer", "optimizer.kind", "schedule.kind",
                                      "train.best_metric", "eval.split", "runtime.precision",
                                      "runtime.distributed"}));
  EXPECT_EQ(key_named("attention.kind").choices, name_strings(attention::attention_kind_names));
  // auto, first, is no value: the task's metric, the launcher's backend.
  EXPECT_EQ(key_named("train.best_metric").choices.front(), "auto");
  EXPECT_FALSE(Config().train.best_metric.has_value());
  EXPECT_FALSE(Config().runtime.distributed.has_value());
  for (const DeviceType type : all_values<DeviceType>()) {
    const std::string name = enum_name(device_type_names, type);
    const std::string yaml = to_yaml(parse_config("", "x.yaml", {"runtime.device=" + name}));
    EXPECT_NE(yaml.find("  device: " + name + "\n"), std::string::npos) << name;
  }
}

TEST(Config, ToYamlListsEveryKeyInSchemaOrder) {
  const std::string yaml = to_yaml(Config{});
  EXPECT_PREFIX(yaml, "model:\n  layers: 2\n  d_model: 128\n  heads: 4\n  d_ff: 512\n");
  EXPECT_NE(yaml.find("attention:\n  kind: vanilla\n  k: 128\n"), std::string::npos);
  EXPECT_NE(yaml.find("  learning_rate: 0.001\n"), std::string::npos);
  EXPECT_NE(yaml.find("  eps: 1.0e-08\n"), std::string::npos);
  EXPECT_NE(yaml.find("  no_decay: [\"*.bias\", \"*norm*\"]\n"), std::string::npos);
  EXPECT_NE(yaml.find("  vocab: \"\"\n"), std::string::npos);
  EXPECT_NE(yaml.find("runtime:\n  device: cpu\n"), std::string::npos);
}

TEST(Config, HashFollowsTheValues) {
  const Config a = parse_config("", "a.yaml");
  const Config b = parse_config("train:\n  steps: 1000\n", "b.yaml");  // the default, spelled out
  const Config c = parse_config("", "a.yaml", {"train.steps=1001"});
  EXPECT_EQ(config_hash(a).size(), 16u);
  EXPECT_EQ(config_hash(a).find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(config_hash(a), config_hash(b));
  EXPECT_NE(config_hash(a), config_hash(c));
}

TEST(Config, ValidateChecksConfigsBuiltInCode) {
  Config config;
  EXPECT_NO_THROW(validate(config));
  config.source = "built.yaml";
  config.model.transformer.heads = 3;
  EXPECT_EQ(error_of([&] { validate(config); }),
            "built.yaml: model.heads: must divide model.d_model (128), got 3");
  config.model.transformer.heads = 0;
  EXPECT_EQ(error_of([&] { validate(config); }), "built.yaml: model.heads: must be >= 1, got 0");
}

TEST(Config, ResolvedOptions) {
  Config config =
      parse_config("", "x.yaml",
                   {"optimizer.learning_rate=0.01", "optimizer.weight_decay=0.1",
                    "optimizer.no_decay=[b]", "schedule.warmup_steps=10", "train.steps=500"});
  optim::ScheduleOptions schedule = config.schedule_options();
  EXPECT_EQ(schedule.base_learning_rate, 0.01);
  EXPECT_EQ(schedule.warmup_steps, 10);
  EXPECT_EQ(schedule.total_steps, 500);  // 0: train.steps
  config.schedule.total_steps = 300;
  EXPECT_EQ(config.schedule_options().total_steps, 300);
  EXPECT_EQ(config.optimizer.adamw().weight_decay, 0.1);
  EXPECT_EQ(config.optimizer.adamw().no_decay, std::vector<std::string>{"b"});
  EXPECT_EQ(config.optimizer.sgd().momentum, 0.9);
}

TEST(Config, EnumerationNames) {
  EXPECT_EQ(task_name(TaskKind::retrieval), "retrieval");
  EXPECT_EQ(parse_config("data:\n  task: lm\n", "x.yaml").data.task, TaskKind::lm);
  EXPECT_EQ(parse_config("optimizer:\n  kind: sgd\n", "x.yaml").optimizer.kind, OptimizerKind::sgd);
  EXPECT_EQ(parse_error("data:\n  tokenizer: bpe\n"),
            "x.yaml:2: data.tokenizer: expected one of listops|byte|word|sentencepiece, got 'bpe'");
}

// Sets TOPKFORMER_DATA for one test and restores it afterwards.
class ScopedDataRoot {
 public:
  explicit ScopedDataRoot(const std::string& value) {
    if (const char* old = std::getenv("TOPKFORMER_DATA")) old_ = old;
    setenv("TOPKFORMER_DATA", value.c_str(), 1);
  }
  ~ScopedDataRoot() {
    if (old_) {
      setenv("TOPKFORMER_DATA", old_->c_str(), 1);
    } else {
      unsetenv("TOPKFORMER_DATA");
    }
  }

 private:
  std::optional<std::string> old_;
};

TEST(Config, SplitPathsExpandTheDataRoot) {
  const ScopedDataRoot root("/shared/data");
  const Config config =
      parse_config("data:\n  dir: ${TOPKFORMER_DATA}/listops\n  valid_file: v.tsv\n", "x.yaml");
  EXPECT_EQ(config.data.directory(), "/shared/data/listops");
  EXPECT_EQ(config.data.train_path(), "/shared/data/listops/basic_train.tsv");
  EXPECT_EQ(config.data.split_path(EvalSplit::valid), "/shared/data/listops/v.tsv");
  EXPECT_EQ(config.data.split_path(EvalSplit::test), "/shared/data/listops/basic_test.tsv");
  EXPECT_EQ(expand_path("${TOPKFORMER_DATA}/a:${TOPKFORMER_DATA}"), "/shared/data/a:/shared/data");
  EXPECT_EQ(expand_path("plain/path"), "plain/path");
  EXPECT_NE(to_yaml(config).find("dir: \"${TOPKFORMER_DATA}/listops\""), std::string::npos);
}

using ConfigFile = testing::TemporaryFolderTest;

TEST_F(ConfigFile, LoadsAFileAndNamesItInErrors) {
  const auto good = write("good.yaml", "attention:\n  kind: chunked\n  chunk_size: 256\n");
  const Config config = load_config(good, {"attention.chunk_size=512"});
  EXPECT_EQ(config.source, good.string());
  EXPECT_EQ(config.model.transformer.attention.kind, attention::AttentionKind::chunked);
  EXPECT_EQ(config.model.transformer.attention.chunk_size, 512);

  const auto bad = write("bad.yaml", "\n\nattention:\n  chunk_size: -1\n");
  EXPECT_EQ(error_of([&] { load_config(bad); }),
            bad.string() + ":4: attention.chunk_size: must be >= 1, got -1");
  const auto missing = directory() / "missing.yaml";
  EXPECT_EQ(error_of([&] { load_config(missing); }),
            missing.string() + ": cannot read the config file");
}

TEST_F(ConfigFile, SizeIsCappedAtOneMebibyte) {
  // `--config /dev/zero` was read into memory without end.
  const std::string mebibyte = "#" + std::string((1 << 20) - 2, 'x') + "\n";
  EXPECT_NO_THROW(load_config(write("exact.yaml", mebibyte)));
  const std::string too_large =
      ": the config file holds more than 1048576 bytes (1 MiB), the most a config may have";
  const auto over = write("over.yaml", mebibyte + "\n");
  ASSERT_EQ(error_of([&] { load_config(over); }), over.string() + too_large);
  EXPECT_EQ(error_of([&] { load_config("/dev/zero"); }), "/dev/zero" + too_large);
  // A folder read as an empty file before: every default, silently.
  EXPECT_EQ(error_of([&] { load_config(directory()); }),
            directory().string() + ": cannot read the config file: it is a folder");
}

TEST_F(ConfigFile, DeeplyNestedYamlIsNamedAsSuch) {
  // yaml-cpp refuses nesting of 500 levels, but its message was "bad file".
  const std::string says =
      ": invalid YAML: lists and maps nested 500 levels deep, deeper than "
      "the YAML parser accepts";
  const auto flow = write("flow.yaml", "model: " + std::string(600, '['));
  EXPECT_EQ(error_of([&] { load_config(flow); }), flow.string() + ":1" + says);
  std::string indented;
  for (int level = 0; level < 600; ++level) {
    indented += std::string(2 * level, ' ') + "k" + std::to_string(level) + ":\n";
  }
  const auto block = write("block.yaml", indented);
  EXPECT_EQ(error_of([&] { load_config(block); }).substr(0, block.string().size() + 1),
            block.string() + ":");
  EXPECT_NE(error_of([&] { load_config(block); }).find(says), std::string::npos);
  EXPECT_EQ(parse_error("", {"model.layers=" + std::string(600, '[')}),
            "--set model.layers=" + std::string(600, '[') +
                ": model.layers: invalid YAML value: lists and maps nested 500 levels deep, "
                "deeper than the YAML parser accepts");
}

// docs/config.md holds schema_markdown() between these markers; with
// TOPKFORMER_UPDATE_DOCS=1 the test rewrites that part instead of failing.
TEST(Config, DocsHoldTheSchemaVerbatim) {
  const std::filesystem::path file = data::project_root() / "docs" / "config.md";
  std::ifstream in(file);
  ASSERT_TRUE(in) << "cannot read " << file;
  std::stringstream text;
  text << in.rdbuf();
  std::string doc = text.str();
  const std::string begin = "<!-- schema_markdown() begins -->\n";
  const std::string end = "<!-- schema_markdown() ends -->";
  const auto from = doc.find(begin), to = doc.find(end);
  ASSERT_TRUE(from != std::string::npos && to != std::string::npos && from < to)
      << file << " lacks the markers " << begin << " and " << end;
  const std::string expected = "\n" + schema_markdown() + "\n";
  const std::size_t start = from + begin.size();
  const std::string actual = doc.substr(start, to - start);
  if (const char* update = std::getenv("TOPKFORMER_UPDATE_DOCS");
      update && *update == '1' && actual != expected) {
    std::ofstream(file) << doc.replace(start, to - start, expected);
    return;
  }
  EXPECT_EQ(actual, expected) << file
                              << " is out of date: rerun this test with TOPKFORMER_UPDATE_DOCS=1";
}

}  // namespace
}  // namespace topkformer::train
