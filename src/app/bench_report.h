// Shared by the `bench` commands: common options, random token ids, one
// measurement of a workload (times, allocator and resident peaks), and the
// output table / CSV.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "app/timing.h"
#include "topkformer/core/names.h"
#include "topkformer/core/rng.h"
#include "topkformer/core/tensor.h"

namespace topkformer::app {

struct LayerBenchOptions {
  std::vector<std::string> variants;
  std::vector<std::int64_t> lengths{1024, 2048, 4096, 8192};
  std::int64_t batch = 1, d_model = 256, k = 128, chunk_size = 1024;
  bool backward = false;
  int warmup = 1, repeats = 3;
  std::string device = "cpu";
  std::string precision = "fp32";  // a name of bench_precision_names
  std::string csv;
};

// What --precision names: the dtype of weights and activations (fp32, fp64),
// or f32 tensors whose matrix products run on tensor cores (tf32, bf16; GPU).
enum class BenchPrecision { fp32, fp64, tf32, bf16, count };
inline constexpr auto bench_precision_names =
    std::to_array<std::string_view>({"fp32", "fp64", "tf32", "bf16"});
static_assert(names_match<BenchPrecision>(bench_precision_names));

// The dtype of --precision: f64 for fp64, else f32.
DType precision_dtype(const std::string& precision);
// Sets the GPU matrix-product precision for --precision (tf32, bf16; fp32
// otherwise) after checking that tf32 and bf16 run on a GPU.
void set_bench_precision(const std::string& precision, Device device);

// Registers the options the benchmarks share on `command`; --backward only
// when `backward_flag` (bench model always runs forward + backward).
void add_layer_bench_options(CLI::App& command, LayerBenchOptions& options,
                             bool backward_flag = true);

// i64 ids uniform in [0, upper) (random tokens or labels; never all zeros).
Tensor random_ids(const Shape& shape, std::int64_t upper, Generator& generator);

struct Measurement {
  Timing timing;               // over the timed runs; timing.repeats of them ran (0: none)
  double total_seconds = 0.0;  // the timed runs together
  // Peak of the allocator's live bytes over the timed runs, above what was
  // held before them (inputs and weights): what the workload itself needed.
  std::int64_t peak_bytes = 0;
  // The most the allocator held from the system over the warm-up and timed
  // runs, weights, inputs and the caching allocator's free blocks included:
  // the exact counter Allocator::peak_reserved_bytes().
  std::int64_t peak_reserved_bytes = 0;
  // The allocator's peak of live bytes over the same runs, weights and inputs
  // included: what peak_reserved_bytes is held against (Note [caching allocator]).
  std::int64_t peak_live_bytes = 0;
  // The process's peak resident memory: over the timed runs when
  // rss_peak_is_per_measurement(), else since the process started.
  std::int64_t peak_rss_bytes = 0;
  // Set when a run's reserved bytes exceeded measure_workload()'s reserved_limit: the
  // runs stopped there (timing then covers the timed runs done, maybe none).
  bool exceeded_limit = false;
};

// The CSV column of Measurement::peak_rss_bytes: peak_rss_bytes (per
// measurement) or process_peak_rss_bytes (since the process started).
std::string rss_column_name();

// Measures `run` (one forward, forward + backward, or a training step) on
// `device`: empties the allocator's cache (so reserved and resident bytes
// reflect this workload, not earlier ones), runs `warmup` untimed runs, then
// `repeats` timed ones. A reserved_limit > 0 stops the runs as soon as the
// reserved bytes exceed it (Measurement::exceeded_limit).
Measurement measure_workload(const std::string& device, const std::function<void()>& run,
                             int warmup, int repeats, std::int64_t reserved_limit = 0);

// "30GiB", "512MiB", "1.5G", "1000000" (bytes): binary units B, KiB/K, MiB/M,
// GiB/G, TiB/T; decimal kB/KB, MB, GB, TB. Throws Error on anything else.
std::int64_t parse_bytes(const std::string& text);
// 1536 -> "1.5 KiB", 32212254720 -> "30.0 GiB".
std::string format_bytes(std::int64_t bytes);

// Prints one table row per measurement and, when csv_path is set, writes the
// same rows as CSV. Header = the given columns, then time_median_s,
// time_min_s, time_max_s, peak_bytes, peak_reserved_bytes and rss_column_name().
// A row without a measurement (a length that was not run) prints "-" and
// leaves those CSV fields empty.
class BenchReport {
 public:
  struct Column {
    Column(const char* column_name) : name(column_name) {}  // NOLINT: implicit on purpose
    Column(std::string column_name, int column_width)
        : name(std::move(column_name)), width(column_width) {}
    std::string name;
    int width = 11;  // table width (at least the name's length + 1)
  };
  explicit BenchReport(std::vector<Column> columns);
  void add(const std::vector<std::string>& values, const std::optional<Measurement>& measurement);
  void write_csv(const std::string& path) const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace topkformer::app
