#include "app/layer_bench.h"

#include <cstdio>
#include <fstream>
#include <iostream>

#include "topkformer/core/allocator.h"
#include "topkformer/core/error.h"

namespace topkformer::app {

void add_layer_bench_options(CLI::App& command, LayerBenchOptions& options) {
  command.add_option("--lengths", options.lengths, "Sequence lengths")->delimiter(',');
  command.add_option("--batch", options.batch, "Batch size")->check(CLI::PositiveNumber);
  command.add_option("--d-model", options.d_model, "Model width")->check(CLI::PositiveNumber);
  command.add_option("--k", options.k, "top-k: entries kept per row")->check(CLI::PositiveNumber);
  command.add_option("--chunk-size", options.chunk_size, "chunked, top-k: rows per chunk")
      ->check(CLI::PositiveNumber);
  command.add_flag("--backward", options.backward,
                   "Time forward + backward (else forward only, "
                   "without autograd)");
  command.add_option("--warmup", options.warmup, "Untimed runs first")
      ->check(CLI::NonNegativeNumber);
  command.add_option("--repeats", options.repeats, "Timed runs")->check(CLI::PositiveNumber);
  command.add_option("--device", options.device, "cpu, cuda or cuda:N");
  command.add_option("--csv", options.csv, "Also write the rows to this CSV file");
}

LayerMeasurement measure_layer(const std::string& device, const std::function<void()>& run,
                               int warmup, int repeats) {
  Allocator& allocator = allocator_for(Device::parse(device));
  for (int i = 0; i < warmup; ++i) run();
  const std::int64_t held_before = allocator.current_bytes();
  allocator.reset_peak();
  LayerMeasurement result;
  result.timing = measure(run, 0, repeats);
  result.peak_bytes = allocator.peak_bytes() - held_before;
  return result;
}

void BenchReport::add(const std::vector<std::string>& values, const LayerMeasurement& m) {
  std::vector<std::string> row = values;
  row.push_back(std::to_string(m.timing.median_seconds));
  row.push_back(std::to_string(m.timing.min_seconds));
  row.push_back(std::to_string(m.timing.max_seconds));
  row.push_back(std::to_string(m.peak_bytes));
  if (rows_.empty()) {
    for (const std::string& column : columns_) std::printf("%-11s", column.c_str());
    std::printf("%12s %12s %12s %12s\n", "median_ms", "min_ms", "max_ms", "peak_MiB");
  }
  for (const std::string& value : values) std::printf("%-11s", value.c_str());
  std::printf("%12.2f %12.2f %12.2f %12.1f\n", m.timing.median_seconds * 1e3,
              m.timing.min_seconds * 1e3, m.timing.max_seconds * 1e3,
              double(m.peak_bytes) / (1024.0 * 1024.0));
  std::fflush(stdout);
  rows_.push_back(std::move(row));
}

void BenchReport::write_csv(const std::string& path) const {
  std::ofstream out(path);
  TKF_CHECK(out.good(), "bench: cannot write CSV file '", path, "'");
  for (const std::string& column : columns_) out << column << ',';
  out << "time_median_s,time_min_s,time_max_s,peak_bytes\n";
  for (const auto& row : rows_) {
    for (std::size_t i = 0; i < row.size(); ++i) out << (i ? "," : "") << row[i];
    out << '\n';
  }
  TKF_CHECK(out.good(), "bench: error writing CSV file '", path, "'");
}

}  // namespace topkformer::app
