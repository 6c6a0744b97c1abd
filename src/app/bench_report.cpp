#include "app/bench_report.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "topkformer/core/allocator.h"
#include "topkformer/core/device_timer.h"
#include "topkformer/core/error.h"
#include "topkformer/core/runtime.h"

namespace topkformer::app {

namespace {

std::string mib(std::int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", double(bytes) / (1024.0 * 1024.0));
  return text;
}

// Peak reserved over peak live bytes, both with weights and inputs: how much
// the caching allocator holds beyond what the tensors need.
std::string reserved_per_live(const Measurement& measurement) {
  if (measurement.peak_live_bytes <= 0) return "";
  char text[32];
  std::snprintf(text, sizeof text, "%.3f",
                double(measurement.peak_reserved_bytes) / double(measurement.peak_live_bytes));
  return text;
}

}  // namespace

void add_layer_bench_options(CLI::App& command, LayerBenchOptions& options, bool backward_flag) {
  command.add_option("--lengths", options.lengths, "Sequence lengths")->delimiter(',');
  command.add_option("--batch", options.batch, "Batch size")->check(CLI::PositiveNumber);
  command.add_option("--d-model", options.d_model, "Model width")->check(CLI::PositiveNumber);
  command.add_option("--k", options.k, "top-k: entries kept per row")->check(CLI::PositiveNumber);
  command.add_option("--chunk-size", options.chunk_size, "chunked, top-k: rows per chunk")
      ->check(CLI::PositiveNumber);
  if (backward_flag) {
    command.add_flag("--backward", options.backward,
                     "Time forward + backward (else forward only, without autograd)");
  }
  command.add_option("--warmup", options.warmup, "Untimed runs first")
      ->check(CLI::NonNegativeNumber);
  command.add_option("--repeats", options.repeats, "Timed runs")->check(CLI::PositiveNumber);
  command.add_option("--device", options.device, "cpu, cuda or cuda:N");
  command
      .add_option("--precision", options.precision,
                  "fp32 or fp64: the dtype of weights and activations; tf32 or bf16: fp32 "
                  "tensors with matrix products on tensor cores (GPU only)")
      ->check(CLI::IsMember(name_strings(bench_precision_names)));
  command.add_option("--csv", options.csv, "Also write the rows to this CSV file");
}

DType precision_dtype(const std::string& precision) {
  const auto chosen = parse_enum<BenchPrecision>(bench_precision_names, precision, "--precision");
  return chosen == BenchPrecision::fp64 ? DType::f64 : DType::f32;
}

void set_bench_precision(const std::string& precision, Device device) {
  const auto chosen = parse_enum<BenchPrecision>(bench_precision_names, precision, "--precision");
  const bool reduced = chosen == BenchPrecision::tf32 || chosen == BenchPrecision::bf16;
  TKF_CHECK(!reduced || device.is_cuda(), "--precision ", precision,
            ": tensor-core precisions need a GPU (--device cuda), got ", device.str());
  set_matmul_precision(reduced ? parse_matmul_precision(precision) : MatmulPrecision::fp32);
}

Tensor random_ids(const Shape& shape, std::int64_t upper, Generator& generator) {
  const std::vector<double> uniform =
      Tensor::rand(shape, generator, DType::f64).to_vector<double>();
  std::vector<std::int64_t> ids(uniform.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    ids[i] = std::min(upper - 1, std::int64_t(uniform[i] * double(upper)));
  }
  return Tensor::from_vector<std::int64_t>(shape, ids);
}

std::string rss_column_name() {
  return resident_peak_is_resettable() ? "peak_rss_bytes" : "process_peak_rss_bytes";
}

Measurement measure_workload(const std::string& device, const std::function<void()>& run,
                             int warmup, int repeats, std::int64_t reserved_limit) {
  Allocator& allocator = allocator_for(Device::parse(device));
  DeviceTimer timer(Device::parse(device));
  allocator.empty_cache();
  Measurement result;
  result.peak_reserved_bytes = allocator.reserved_bytes();
  result.peak_live_bytes = allocator.current_bytes();
  // After each run: the peaks, and whether the limit was passed.
  const auto within_limit = [&] {
    result.peak_reserved_bytes =
        std::max(result.peak_reserved_bytes, allocator.peak_reserved_bytes());
    result.peak_live_bytes = std::max(result.peak_live_bytes, allocator.peak_bytes());
    result.exceeded_limit = reserved_limit > 0 && result.peak_reserved_bytes > reserved_limit;
    return !result.exceeded_limit;
  };
  // A workload that is over the limit already in its warm-up reports the
  // warm-up's peaks.
  std::int64_t held_before = allocator.current_bytes();
  allocator.reset_peak();
  reset_resident_peak();
  for (int i = 0; i < warmup && !result.exceeded_limit; ++i) {
    run();
    within_limit();
  }
  std::vector<double> seconds;
  if (!result.exceeded_limit) {
    held_before = allocator.current_bytes();
    allocator.reset_peak();
    reset_resident_peak();
    for (int i = 0; i < repeats; ++i) {
      timer.start();
      run();
      seconds.push_back(timer.stop());
      if (!within_limit()) break;
    }
  }
  result.peak_bytes = allocator.peak_bytes() - held_before;
  result.peak_rss_bytes = resident_peak();
  result.timing.repeats = int(seconds.size());
  for (double s : seconds) result.total_seconds += s;
  if (!seconds.empty()) {
    std::sort(seconds.begin(), seconds.end());
    result.timing.median_seconds = seconds[seconds.size() / 2];
    result.timing.min_seconds = seconds.front();
    result.timing.max_seconds = seconds.back();
  }
  return result;
}

std::int64_t parse_bytes(const std::string& text) {
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  double value = 0.0;
  const auto [rest, error] = std::from_chars(begin, end, value);
  TKF_CHECK(error == std::errc() && value >= 0.0, "expected a size such as 30GiB, got '", text,
            "'");
  std::string unit(rest, end);
  unit.erase(0, unit.find_first_not_of(' '));
  struct Unit {
    const char* name;
    double bytes;
  };
  static const Unit units[] = {{"", 1.0},
                               {"B", 1.0},
                               {"K", 1024.0},
                               {"KiB", 1024.0},
                               {"M", 1048576.0},
                               {"MiB", 1048576.0},
                               {"G", 1073741824.0},
                               {"GiB", 1073741824.0},
                               {"T", 1099511627776.0},
                               {"TiB", 1099511627776.0},
                               {"kB", 1e3},
                               {"KB", 1e3},
                               {"MB", 1e6},
                               {"GB", 1e9},
                               {"TB", 1e12}};
  for (const Unit& candidate : units) {
    if (unit == candidate.name) return std::int64_t(value * candidate.bytes + 0.5);
  }
  throw Error("expected a size such as 30GiB (units B, KiB, MiB, GiB, TiB, kB, MB, GB, TB), got '" +
              text + "'");
}

std::string format_bytes(std::int64_t bytes) {
  static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = double(bytes);
  int unit = 0;
  while (unit < 4 && std::abs(value) >= 1024.0) {
    value /= 1024.0;
    ++unit;
  }
  char text[48];
  if (unit == 0) {
    std::snprintf(text, sizeof text, "%lld B", static_cast<long long>(bytes));
  } else {
    std::snprintf(text, sizeof text, "%.1f %s", value, units[unit]);
  }
  return text;
}

BenchReport::BenchReport(std::vector<Column> columns) : columns_(std::move(columns)) {
  for (Column& column : columns_)
    column.width = std::max(column.width, int(column.name.size()) + 1);
}

void BenchReport::add(const std::vector<std::string>& values,
                      const std::optional<Measurement>& measurement) {
  TKF_CHECK(values.size() == columns_.size(), "BenchReport: ", values.size(), " values for ",
            columns_.size(), " columns");
  if (rows_.empty()) {
    for (const Column& column : columns_) std::printf("%-*s", column.width, column.name.c_str());
    std::printf("%11s %11s %11s %11s %12s %11s %9s\n", "median_ms", "min_ms", "max_ms", "peak_MiB",
                "reserved_MiB", "rss_MiB", "res/live");
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    std::printf("%-*s", columns_[i].width, values[i].c_str());
  }
  std::vector<std::string> row = values;
  const bool timed = measurement && measurement->timing.repeats > 0;
  const auto time_field = [&](double seconds, bool csv) -> std::string {
    if (!timed) return csv ? "" : "-";
    char text[32];
    std::snprintf(text, sizeof text, csv ? "%.6f" : "%.2f", csv ? seconds : seconds * 1e3);
    return text;
  };
  const Timing timing = measurement ? measurement->timing : Timing{};
  std::printf("%11s %11s %11s", time_field(timing.median_seconds, false).c_str(),
              time_field(timing.min_seconds, false).c_str(),
              time_field(timing.max_seconds, false).c_str());
  const std::string ratio = measurement ? reserved_per_live(*measurement) : "";
  if (measurement) {
    std::printf(" %11s %12s %11s %9s\n", mib(measurement->peak_bytes).c_str(),
                mib(measurement->peak_reserved_bytes).c_str(),
                mib(measurement->peak_rss_bytes).c_str(), ratio.c_str());
  } else {
    std::printf(" %11s %12s %11s %9s\n", "-", "-", "-", "-");
  }
  std::fflush(stdout);
  row.push_back(time_field(timing.median_seconds, true));
  row.push_back(time_field(timing.min_seconds, true));
  row.push_back(time_field(timing.max_seconds, true));
  row.push_back(measurement ? std::to_string(measurement->peak_bytes) : "");
  row.push_back(measurement ? std::to_string(measurement->peak_reserved_bytes) : "");
  row.push_back(measurement ? std::to_string(measurement->peak_rss_bytes) : "");
  row.push_back(ratio);
  rows_.push_back(std::move(row));
}

void BenchReport::write_csv(const std::string& path) const {
  std::ofstream out(path);
  TKF_CHECK(out.good(), "bench: cannot write CSV file '", path, "'");
  for (const Column& column : columns_) out << column.name << ',';
  out << "time_median_s,time_min_s,time_max_s,peak_bytes,peak_reserved_bytes," << rss_column_name()
      << ",reserved_per_live\n";
  for (const auto& row : rows_) {
    for (std::size_t i = 0; i < row.size(); ++i) out << (i ? "," : "") << row[i];
    out << '\n';
  }
  out.close();  // the last buffered bytes reach the file (or fail) here
  TKF_CHECK(!out.fail(), "bench: error writing CSV file '", path, "'");
}

}  // namespace topkformer::app
