#include "run_log.h"

#include <cmath>
#include <cstdio>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include "topkformer/core/error.h"

namespace topkformer::train {

RunLog::RunLog(const std::filesystem::path& run_dir, bool console, int rank)
    : previous_(spdlog::default_logger()) {
  if (rank != 0) {
    auto logger = std::make_shared<spdlog::logger>(
        "train", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    logger->set_pattern(fmt::format("[%Y-%m-%d %H:%M:%S] [rank {}] [%^%l%$] %v", rank));
    logger->set_level(spdlog::level::warn);
    spdlog::set_default_logger(logger);
    return;
  }
  std::vector<spdlog::sink_ptr> sinks;
  if (console) sinks.push_back(std::make_shared<spdlog::sinks::stdout_color_sink_mt>());
  sinks.push_back(
      std::make_shared<spdlog::sinks::basic_file_sink_mt>((run_dir / "train.log").string()));
  auto logger = std::make_shared<spdlog::logger>("train", sinks.begin(), sinks.end());
  logger->set_pattern("[%Y-%m-%d %H:%M:%S] [%^%l%$] %v");
  logger->flush_on(spdlog::level::info);
  // spdlog's default prints the failure and goes on: a full disk would
  // truncate train.log unnoticed.
  logger->set_error_handler([this](const std::string& message) {
    if (failure_.empty()) failure_ = message;
  });
  spdlog::set_default_logger(logger);
  metrics_.emplace(run_dir / "metrics.jsonl", detail::SyncedFile::Mode::append);
}

RunLog::~RunLog() {
  spdlog::set_default_logger(previous_);
}

void RunLog::metrics(const nlohmann::json& line) {
  if (!metrics_) return;
  const std::string text = json_text(line) + '\n';
  try {
    metrics_->write(text.data(), text.size());
  } catch (const Error& error) {
    throw LogWriteError(error.what());
  }
}

void RunLog::check() const {
  if (!failure_.empty()) throw LogWriteError("cannot write the run's log: " + failure_);
}

std::string json_text(const nlohmann::json& line, int indent) {
  return line.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto total = static_cast<long long>(std::llround(seconds));
  char text[32];
  std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", total / 3600, total / 60 % 60, total % 60);
  return text;
}

}  // namespace topkformer::train
