// Where a run reports: spdlog to the console and RUN/train.log (as the
// default logger while the run lasts, so every component's messages land in
// the log), and RUN/metrics.jsonl, one JSON object per line. In a
// data-parallel run rank 0 reports; the other ranks only print their
// warnings and errors, marked with their rank.
#pragma once

#include <filesystem>
#include <fstream>
#include <memory>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

namespace topkformer::train {

class RunLog {
 public:
  RunLog(const std::filesystem::path& run_dir, bool console, int rank);
  ~RunLog();
  RunLog(const RunLog&) = delete;
  RunLog& operator=(const RunLog&) = delete;

  // Appends one line to metrics.jsonl (rank 0) and flushes it, so a killed
  // run keeps every line it logged.
  void metrics(const nlohmann::json& line);

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ofstream metrics_;
};

// "1:02:03" for 3723 seconds.
std::string format_duration(double seconds);

}  // namespace topkformer::train
