#include "topkformer/core/runtime.h"

#include <cblas.h>
#include <omp.h>

#include <spdlog/spdlog.h>

#include <sys/resource.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "build_config.h"
#include "topkformer/core/error.h"
#if TOPKFORMER_WITH_CUDA
#include "cuda/device_info.h"
#endif

namespace topkformer {

int max_num_threads() {
  // More threads than cores only add switching, and idle OpenBLAS threads
  // spin: 100,000 of them kept every core busy doing nothing. A few per core
  // still allows experiments with oversubscription.
  constexpr int threads_per_core = 4;
  const unsigned cores = std::thread::hardware_concurrency();
  return threads_per_core * (cores > 0 ? static_cast<int>(cores) : omp_get_num_procs());
}

void set_num_threads(int threads) {
  int count = threads > 0 ? threads : omp_get_num_procs();
  if (const int most = max_num_threads(); count > most) {
    spdlog::warn("{} threads requested, more than {} (4 per core): using {}", count, most, most);
    count = most;
  }
  omp_set_num_threads(count);
  openblas_set_num_threads(count);
}

int num_threads() {
  return omp_get_max_threads();
}

namespace {
std::atomic<MatmulPrecision> current_matmul_precision{MatmulPrecision::fp32};
}  // namespace

void set_matmul_precision(MatmulPrecision precision) {
  current_matmul_precision = precision;
}

MatmulPrecision matmul_precision() {
  return current_matmul_precision;
}

void configure_host_memory() {
#if defined(__GLIBC__)
  // Setting the threshold, even to its starting value, turns its growth off.
  constexpr int mmap_threshold = 128 * 1024;
  mallopt(M_MMAP_THRESHOLD, mmap_threshold);
#endif
}

void release_free_host_memory() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

std::string version() {
  return TOPKFORMER_VERSION;
}

std::string build_info() {
  std::ostringstream out;
  out << "topkformer " << TOPKFORMER_VERSION << " (" << TOPKFORMER_BUILD_TYPE << ")"
#if TOPKFORMER_WITH_CUDA
      << "\n  CUDA: built; " << cuda::device_summary()
#else
      << "\n  CUDA: not built"
#endif
      << "\n  MPI: " << (TOPKFORMER_WITH_MPI ? "built" : "not built")
      << "\n  OpenBLAS: " << openblas_get_config() << ", " << openblas_get_num_threads()
      << " threads"
      << "\n  OpenMP threads: " << omp_get_max_threads();
  return out.str();
}

namespace {
// The "Name:   N kB" field `name` of a /proc file in bytes, or -1 where there is none.
std::int64_t read_kib_field(const char* file, const std::string& name) {
  std::ifstream status(file);
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(name + ":", 0) != 0) continue;
    std::istringstream fields(line.substr(name.size() + 1));
    std::int64_t kib = -1;
    fields >> kib;
    return kib < 0 ? -1 : kib * 1024;
  }
  return -1;
}

std::int64_t read_vm_hwm() {
  return read_kib_field("/proc/self/status", "VmHWM");
}

// Resets VmHWM to the current resident size; false where the kernel refuses.
bool reset_vm_hwm() {
  std::ofstream clear_refs("/proc/self/clear_refs");
  if (!clear_refs.good()) return false;
  clear_refs << "5";
  clear_refs.flush();
  return clear_refs.good();
}
}  // namespace

bool resident_peak_is_resettable() {
  static const bool resettable = read_vm_hwm() >= 0 && reset_vm_hwm() && read_vm_hwm() >= 0;
  return resettable;
}

const char* resident_peak_method() {
  return resident_peak_is_resettable() ? "vm_hwm" : "ru_maxrss";
}

std::int64_t resident_peak() {
  if (resident_peak_is_resettable()) return read_vm_hwm();
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return -1;
  return std::int64_t(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

void reset_resident_peak() {
  if (resident_peak_is_resettable()) reset_vm_hwm();
}

std::int64_t resident_bytes() {
  return read_kib_field("/proc/self/status", "VmRSS");
}

std::int64_t available_memory_bytes() {
  return read_kib_field("/proc/meminfo", "MemAvailable");
}

}  // namespace topkformer
