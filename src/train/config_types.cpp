// The config's small helpers: path expansion, the conversions to the options
// the optimizers and schedules take, and the optimizer a config describes.
#include "topkformer/data/data_root.h"
#include "topkformer/train/config.h"

namespace topkformer::train {

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
  return directory() / train_file;
}

std::filesystem::path DataConfig::split_path(EvalSplit split) const {
  return directory() / (split == EvalSplit::valid ? valid_file : test_file);
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

std::unique_ptr<optim::Optimizer> OptimizerConfig::make(nn::NamedTensors parameters) const {
  if (kind == OptimizerKind::sgd) return std::make_unique<optim::Sgd>(std::move(parameters), sgd());
  return std::make_unique<optim::AdamW>(std::move(parameters), adamw());
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
