// The experiment config: one YAML file with the sections model, attention,
// feedforward, data, optimizer, schedule, train, eval and runtime.
// See Note [config types].
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "topkformer/core/names.h"
#include "topkformer/core/runtime.h"
#include "topkformer/dist/communicator.h"
#include "topkformer/models/models.h"
#include "topkformer/optim/optimizer.h"
#include "topkformer/optim/schedule.h"

// Note [config types]
// Every key has a type, a default and a documented meaning (docs/config.md);
// the file and `--set section.key=value` overrides are validated against that
// schema, and an unknown key, a wrong type or an out-of-range value is an
// Error of the form `configs/x.yaml:12: attention.kind: expected one of
// vanilla|..., got 'topK'` (a choice's names: its table, `topkformer config
// --list-choices`).

namespace topkformer::train {

// The config's choices, each with its name table (what the config spells;
// the schema reads the tables). The task is what is learned from which
// files: listops and text are classifiers over `label<TAB>text` style TSV
// files, retrieval is the AAN dual encoder, lm the next-token language model
// over a plain text file.
enum class TaskKind { listops, text, retrieval, lm, count };
inline constexpr auto task_names =
    std::to_array<std::string_view>({"listops", "text", "retrieval", "lm"});
static_assert(names_match<TaskKind>(task_names));
inline std::string task_name(TaskKind kind) {
  return enum_name(task_names, kind);
}

enum class TokenizerKind { listops, byte, word, sentencepiece, count };
inline constexpr auto tokenizer_names =
    std::to_array<std::string_view>({"listops", "byte", "word", "sentencepiece"});
static_assert(names_match<TokenizerKind>(tokenizer_names));

enum class OptimizerKind { adamw, sgd, count };
inline constexpr auto optimizer_names = std::to_array<std::string_view>({"adamw", "sgd"});
static_assert(names_match<OptimizerKind>(optimizer_names));

// The evaluation metrics; accuracy is for classifiers, perplexity for lm.
enum class Metric { accuracy, loss, perplexity, count };
inline constexpr auto metric_names =
    std::to_array<std::string_view>({"accuracy", "loss", "perplexity"});
static_assert(names_match<Metric>(metric_names));
inline std::string metric_name(Metric metric) {
  return enum_name(metric_names, metric);
}

// The splits evaluated (eval.split, `topkformer eval --split`).
enum class EvalSplit { valid, test, count };
inline constexpr auto eval_split_names = std::to_array<std::string_view>({"valid", "test"});
static_assert(names_match<EvalSplit>(eval_split_names));
inline std::string eval_split_name(EvalSplit split) {
  return enum_name(eval_split_names, split);
}

// `path` with every `${TOPKFORMER_DATA}` replaced by data::data_root(), so
// that configs name the shared data without machine-specific paths. The
// trainer applies it to data.dir (directory()), data.vocab and data.cache_dir.
std::filesystem::path expand_path(const std::string& path);

struct DataConfig {
  TaskKind task = TaskKind::listops;
  // Folder of the files below, as written (to_yaml keeps `${TOPKFORMER_DATA}`
  // so configs stay portable); directory() expands it. A relative folder is
  // relative to the working directory.
  std::filesystem::path dir = "data/listops";
  std::string train_file = "basic_train.tsv";
  std::string valid_file = "basic_val.tsv";
  std::string test_file = "basic_test.tsv";
  TokenizerKind tokenizer = TokenizerKind::listops;
  // word: vocabulary file (built from the train file and written to the run
  // directory when empty); sentencepiece: the .model file (required).
  // Relative to the working directory; may use `${TOPKFORMER_DATA}`.
  std::string vocab;
  std::int64_t vocab_min_count = 1;  // word: rarer words become <unk>
  // Classifiers: most tokens per text (CLS included); lm: the training block length.
  std::int64_t max_length = 2000;
  bool skip_bad_lines = false;  // skip (and count) malformed lines instead of failing
  std::int64_t max_train_examples =
      0;  // N examples spread through the file (lm: first N blocks); 0: all
  std::int64_t max_eval_examples = 0;  // the same for valid/test; 0: all
  // lm: folder of token caches; empty: $TOPKFORMER_CACHE, else ~/.cache/topkformer.
  std::string cache_dir;

  std::filesystem::path directory() const;   // expand_path(dir)
  std::filesystem::path train_path() const;  // directory() / train_file
  // directory() / valid_file or test_file.
  std::filesystem::path split_path(EvalSplit split) const;
};

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::adamw;
  double learning_rate = 1e-3;                    // the schedule's base rate
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // adamw
  double momentum = 0.9;                          // sgd
  double weight_decay = 0.0;
  std::vector<std::string> no_decay = {"*.bias", "*norm*"};
  double clip_norm = 1.0;  // global gradient norm limit; 0: no clipping (still measured)

  optim::AdamWOptions adamw() const;
  optim::SgdOptions sgd() const;
  // The optimizer this section describes, over `parameters` (the trainer's,
  // the memory planner's, bench train's).
  std::unique_ptr<optim::Optimizer> make(nn::NamedTensors parameters) const;
};

struct ScheduleConfig {
  optim::ScheduleKind kind = optim::ScheduleKind::constant;
  std::int64_t warmup_steps = 0;
  std::int64_t total_steps = 0;  // cosine/linear decay end; 0: train.steps
  double min_learning_rate = 0.0;
};

struct LoopConfig {
  std::int64_t steps = 1000;      // optimizer updates
  std::int64_t batch_size = 32;   // examples (lm: blocks) per update
  std::int64_t accumulation = 1;  // micro-batches each update is split into (divides batch_size)
  std::int64_t log_every = 10;
  std::int64_t eval_every = 0;  // 0: only at the end
  std::int64_t save_every = 0;  // 0: only at the end (and every save_every_minutes)
  double save_every_minutes =
      30.0;                    // also save when this long has passed since the last save; 0: never
  std::int64_t keep_last = 3;  // step checkpoints kept (the best one is kept besides)
  double label_smoothing = 0.0;
  // The metric that picks the best checkpoint; none (`auto`): the task's
  // own, accuracy or perplexity.
  std::optional<Metric> best_metric;
  std::int64_t early_stopping = 0;  // stop after N evaluations without improvement; 0: never
  std::int64_t max_bad_steps = 5;   // consecutive NaN/Inf steps skipped before the run stops
};

struct EvalConfig {
  std::int64_t batch_size = 32;
  std::int64_t segment_length = 1024;  // lm: tokens per non-overlapping evaluation segment
  std::int64_t max_batches = 0;        // evaluations during training stop after N batches; 0: all
  EvalSplit split = EvalSplit::valid;  // the split evaluated during training
};

struct RuntimeConfig {
  std::string device = "cpu";  // cpu|cuda|cuda:N (cuda needs the CUDA backend and a GPU)
  std::int64_t threads = 0;    // CPU threads; 0: all cores
  std::uint64_t seed = 0;      // initialisation, dropout and data order
  // GPU matrix products (not fp32: cuda only)
  MatmulPrecision precision = MatmulPrecision::fp32;
  // The data-parallel backend (nccl needs device cuda); none (`auto`): by
  // the launcher and device (dist::choose_backend).
  std::optional<dist::Backend> distributed;
  // Seconds a rank waits in a collective before it ends the job naming the
  // ranks that do not respond; 0: forever, with MPI's blocking calls.
  double collective_timeout = 1800.0;
};

struct Config {
  // model.* and the attention/feedforward sections, as the models take them.
  // model.vocab_size is filled in from the tokenizer, model.seed from
  // runtime.seed, model.num_classes from the task. model.max_length 0 (the
  // default) means data.max_length (lm: eval.segment_length when longer):
  // the trainer resolves it, the config keeps the 0.
  models::ModelConfig model = [] {
    models::ModelConfig defaults;
    defaults.max_length = 0;
    return defaults;
  }();
  DataConfig data;
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  LoopConfig train;
  EvalConfig eval;
  RuntimeConfig runtime;
  std::string source;  // the file it was read from (for messages)

  optim::ScheduleOptions schedule_options() const;  // with base rate and total steps resolved
};

// Reads `file`, applies `overrides` (each `section.key=value`, the value
// parsed as YAML, so `--set optimizer.no_decay=[a,b]` works) in order and
// validates the result. Errors name the file, the line where known and the key.
Config load_config(const std::filesystem::path& file,
                   const std::vector<std::string>& overrides = {});
// The same from YAML text; `source` names it in messages.
Config parse_config(const std::string& yaml, const std::string& source,
                    const std::vector<std::string>& overrides = {});
// Checks every value's range and the rules between keys (model.heads divides
// model.d_model, ...) of a config built or changed in code; errors name
// config.source. load_config and parse_config already do this.
void validate(const Config& config);
// Every key with its effective value, sections and keys in schema order: what
// `topkformer config` prints, what RUN/config.yaml and every checkpoint hold.
// parse_config(to_yaml(c), ...) gives c back.
std::string to_yaml(const Config& config);
// 64-bit FNV-1a of to_yaml(config) as 16 hex digits: state.yaml records it.
std::string config_hash(const Config& config);
// Every choice key with its names in table order, one `section.key: a|b|c`
// line each, in schema order: what `topkformer config --list-choices` prints
// (for scripts). `auto`, where a key takes it, comes first and is no value.
std::string choices_text();
// The Markdown tables of every key (type, default, meaning), one per section,
// that docs/config.md holds verbatim (a test keeps them in sync).
std::string schema_markdown();

// `topkformer eval` may evaluate a checkpoint with another config than the
// one it was trained with, but only in the keys that choose the attention
// and feed-forward variants and their knobs, the evaluation, where the data
// is and the runtime: the others change the architecture or its meaning
// (positions, norm placement, activation, embedding scaling, ...) or do
// nothing at evaluation. Throws naming the first other key that differs,
// with both values.
void check_evaluation_config(const Config& trained, const Config& evaluated);

}  // namespace topkformer::train
