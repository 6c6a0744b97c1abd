// Shared by `bench attention` and `bench ff`: options common to both, one
// measurement (time and the allocator's peak) of a layer, and the output
// table / CSV.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "app/timing.h"

namespace topkformer::app {

struct LayerBenchOptions {
  std::vector<std::string> variants;
  std::vector<std::int64_t> lengths{1024, 2048, 4096, 8192};
  std::int64_t batch = 1, d_model = 256, k = 128, chunk_size = 1024;
  bool backward = false;
  int warmup = 1, repeats = 3;
  std::string device = "cpu";
  std::string csv;
};

// Registers the options both benchmarks share on `command`.
void add_layer_bench_options(CLI::App& command, LayerBenchOptions& options);

struct LayerMeasurement {
  Timing timing;
  std::int64_t peak_bytes = 0;  // peak allocator bytes above what was held before the runs
};

// Times `run` (one forward, or forward + backward) and records the peak of
// the device allocator over the timed runs, above the bytes held before them
// (inputs and weights): the memory the layer itself needed.
LayerMeasurement measure_layer(const std::string& device, const std::function<void()>& run,
                               int warmup, int repeats);

// Prints one table row per measurement and, when csv_path is set, writes the
// same rows as CSV (header = column names + time_median_s, time_min_s,
// time_max_s, peak_bytes).
class BenchReport {
 public:
  explicit BenchReport(std::vector<std::string> columns) : columns_(std::move(columns)) {}
  void add(const std::vector<std::string>& values, const LayerMeasurement& measurement);
  void write_csv(const std::string& path) const;

 private:
  std::vector<std::string> columns_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace topkformer::app
