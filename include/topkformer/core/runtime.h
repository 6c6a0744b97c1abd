// Process-wide runtime settings: threads, GPU matrix-product precision, the C
// library's host memory, and what this build contains.
#pragma once

#include <cstdint>
#include <string>

#include "topkformer/core/names.h"

namespace topkformer {

// Sets the threads used by OpenMP kernels and by OpenBLAS (0 = all cores).
// More than max_num_threads() are cut to it, with a warning.
void set_num_threads(int threads);
int num_threads();
// 4 per core (std::thread::hardware_concurrency).
int max_num_threads();

// How matrix products of f32 tensors are computed on a GPU
// (`runtime.precision`): fp32 (full fp32, TF32 off: the default, as the
// paper measures), tf32 (tensor cores, inputs rounded to a 10-bit mantissa),
// bf16 (tensor cores, inputs rounded to bf16, fp32 accumulation and output).
// Everything else (weights, optimizer state, norms, softmax, loss) stays in
// the tensors' dtype. The CPU always computes in full precision.
enum class MatmulPrecision { fp32, tf32, bf16, count };
inline constexpr auto matmul_precision_names =
    std::to_array<std::string_view>({"fp32", "tf32", "bf16"});
static_assert(names_match<MatmulPrecision>(matmul_precision_names));
void set_matmul_precision(MatmulPrecision precision);
MatmulPrecision matmul_precision();
inline MatmulPrecision parse_matmul_precision(const std::string& name) {
  return parse_enum<MatmulPrecision>(matmul_precision_names, name, "precision");
}
inline std::string matmul_precision_name(MatmulPrecision precision) {
  return enum_name(matmul_precision_names, precision);
}

// Note [host memory]
// glibc's malloc serves a request from the heap's free chunks when one fits;
// otherwise one of at least its mmap threshold (128 KiB at start) gets a
// mapping of its own, unmapped when freed, and a smaller one grows the heap,
// whose free pages stay with the process unless they are at its top.
// Freeing a mapped block raises the threshold to that block's size (up to
// 32 MiB), so once a large tensor is freed, blocks of that size grow the heap
// instead: in a 20-step IMDb run the heap held 832 MiB.
// configure_host_memory() fixes the threshold at its starting value, which
// stops that growth; release_free_host_memory() (malloc_trim) gives back the
// heap's free pages after the steps that free much at once: data loading,
// the vocabulary build and each evaluation.

// Called once at start (main): see Note [host memory]. No effect outside glibc.
void configure_host_memory();
// Gives the free pages of the C library's heap back to the system (see Note
// [host memory]); no effect outside glibc.
void release_free_host_memory();

// Version and build configuration, e.g. for `topkformer --version` and logs.
std::string version();
std::string build_info();

// The process's peak resident memory in bytes (-1 where unknown): VmHWM of
// /proc/self/status since the last reset_resident_peak() where the kernel
// lets it be reset (writing 5 to /proc/self/clear_refs), else getrusage's
// ru_maxrss since the process started. resident_peak_method() says which:
// "vm_hwm" or "ru_maxrss".
std::int64_t resident_peak();
void reset_resident_peak();
bool resident_peak_is_resettable();  // checked once
const char* resident_peak_method();

// The process's resident memory now (VmRSS), in bytes; -1 where unknown.
std::int64_t resident_bytes();
// What the machine can give processes now without swapping (MemAvailable of
// /proc/meminfo), in bytes; -1 where unknown.
std::int64_t available_memory_bytes();

}  // namespace topkformer
