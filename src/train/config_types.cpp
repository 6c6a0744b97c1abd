// The config's small helpers: enumeration names, path expansion and the
// conversions to the options the optimizers and schedules take.
#include <array>
#include <string_view>

#include "topkformer/core/error.h"
#include "topkformer/data/data_root.h"
#include "topkformer/train/config.h"

namespace topkformer::train {
namespace {

constexpr std::array<std::string_view, 4> task_names = {"listops", "text", "retrieval", "lm"};
constexpr std::array<std::string_view, 4> tokenizer_names = {"listops", "byte", "word",
                                                             "sentencepiece"};
constexpr std::array<std::string_view, 2> optimizer_names = {"adamw", "sgd"};

// The enum whose value is the index of `name` in `names`; `key` names the
// config key in the error, as the other parse_* functions do.
template <typename Enum, std::size_t N>
Enum parse_enum(const std::array<std::string_view, N>& names, const std::string& name,
                const std::string& key) {
  std::string choices;
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == name) return Enum(i);
    if (i > 0) choices += '|';
    choices += names[i];
  }
  throw Error(key + ": expected one of " + choices + ", got '" + name + "'");
}

template <typename Enum, std::size_t N>
std::string enum_name(const std::array<std::string_view, N>& names, Enum kind) {
  const auto index = std::size_t(kind);
  return index < N ? std::string(names[index]) : "?";
}

}  // namespace

TaskKind parse_task_kind(const std::string& name) {
  return parse_enum<TaskKind>(task_names, name, "data.task");
}
TokenizerKind parse_tokenizer_kind(const std::string& name) {
  return parse_enum<TokenizerKind>(tokenizer_names, name, "data.tokenizer");
}
OptimizerKind parse_optimizer_kind(const std::string& name) {
  return parse_enum<OptimizerKind>(optimizer_names, name, "optimizer.kind");
}
std::string task_name(TaskKind kind) {
  return enum_name(task_names, kind);
}
std::string tokenizer_name(TokenizerKind kind) {
  return enum_name(tokenizer_names, kind);
}
std::string optimizer_name(OptimizerKind kind) {
  return enum_name(optimizer_names, kind);
}

std::filesystem::path expand_path(const std::string& path) {
  static const std::string variable = "${TOPKFORMER_DATA}";
  std::string expanded;
  std::size_t done = 0;
  for (auto at = path.find(variable); at != std::string::npos; at = path.find(variable, done)) {
    expanded += path.substr(done, at - done) + data::data_root().string();
    done = at + variable.size();
  }
  return expanded + path.substr(done);
}

std::filesystem::path DataConfig::directory() const {
  return expand_path(dir.string());
}

std::filesystem::path DataConfig::train_path() const {
  return split_path("train");
}

std::filesystem::path DataConfig::split_path(const std::string& split) const {
  if (split == "train") return directory() / train_file;
  if (split == "valid") return directory() / valid_file;
  if (split == "test") return directory() / test_file;
  throw Error("data: unknown split '" + split + "' (expected train|valid|test)");
}

optim::AdamWOptions OptimizerConfig::adamw() const {
  optim::AdamWOptions options;
  options.beta1 = beta1;
  options.beta2 = beta2;
  options.eps = eps;
  options.weight_decay = weight_decay;
  options.no_decay = no_decay;
  return options;
}

optim::SgdOptions OptimizerConfig::sgd() const {
  optim::SgdOptions options;
  options.momentum = momentum;
  options.weight_decay = weight_decay;
  options.no_decay = no_decay;
  return options;
}

optim::ScheduleOptions Config::schedule_options() const {
  optim::ScheduleOptions options;
  options.kind = schedule.kind;
  options.base_learning_rate = optimizer.learning_rate;
  options.warmup_steps = schedule.warmup_steps;
  options.total_steps = schedule.total_steps > 0 ? schedule.total_steps : train.steps;
  options.min_learning_rate = schedule.min_learning_rate;
  return options;
}

}  // namespace topkformer::train
