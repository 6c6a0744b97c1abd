// Where a run reports: spdlog to the console and RUN/train.log, and
// RUN/metrics.jsonl, one JSON object per line; rank 0 reports.
// See Note [run log].
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "topkformer/core/error.h"
#include "train/file_io.h"

// Note [run log]
// spdlog is the default logger while the run lasts, so every component's
// messages land in the log. In a data-parallel run the other ranks only print
// their warnings and errors, marked with their rank.

namespace topkformer::train {

// A run log that could not be written (a full disk): the trainer saves a
// checkpoint if it can, then stops with this.
class LogWriteError : public Error {
 public:
  using Error::Error;
};

class RunLog {
 public:
  RunLog(const std::filesystem::path& run_dir, bool console, int rank);
  ~RunLog();
  RunLog(const RunLog&) = delete;
  RunLog& operator=(const RunLog&) = delete;

  // Appends one line to metrics.jsonl (rank 0), written through to the
  // kernel at once, so a killed run keeps every line it logged. Throws
  // LogWriteError naming the file when the write fails.
  void metrics(const nlohmann::json& line);
  // Throws LogWriteError when a message could not be written (train.log or
  // the console): spdlog reports its failures here instead of dropping them.
  void check() const;

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::optional<detail::SyncedFile> metrics_;
  std::string failure_;  // the first failed log write, if any
};

// `line` as JSON text. Paths need not be UTF-8 (a Linux path is any bytes):
// invalid bytes are written as U+FFFD instead of throwing.
std::string json_text(const nlohmann::json& line, int indent = -1);

// "1:02:03" for 3723 seconds.
std::string format_duration(double seconds);

}  // namespace topkformer::train
