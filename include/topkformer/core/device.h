// Where a tensor's storage lives. The CUDA type exists from the start so that
// the CUDA backend slots in behind the same interfaces.
#pragma once

#include <cstdint>
#include <string>

#include "topkformer/core/names.h"

namespace topkformer {

enum class DeviceType { cpu, cuda, count };
inline constexpr auto device_type_names = std::to_array<std::string_view>({"cpu", "cuda"});
static_assert(names_match<DeviceType>(device_type_names));

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static Device cpu() { return {DeviceType::cpu, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::cuda, index}; }
  // Parses a device_type_names entry ("cpu", "cuda": index 0) or "cuda:N".
  static Device parse(const std::string& text);

  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  std::string str() const;
  bool operator==(const Device&) const = default;
};

// CUDA devices this process can use: 0 in a build without the CUDA backend
// and when the CUDA runtime sees no GPU (no driver, no device,
// CUDA_VISIBLE_DEVICES empty). Queried once.
int cuda_device_count();
// Why cuda_device_count() is 0, for messages and skipped tests ("" when it is not).
std::string cuda_unavailable_reason();
// Throws Error naming the device unless this build and process can use it
// (the CPU always; cuda:N when N < cuda_device_count()).
void check_device(Device device);
// The memory of a device in bytes: the machine's physical RAM for the CPU,
// the GPU's global memory for cuda:N (checked like check_device); -1 where
// it is unknown (sysconf fails; cuda in a build without the CUDA backend).
std::int64_t device_memory_bytes(Device device);
// The memory of a device free now: what the machine can give processes
// without swapping (available_memory_bytes) for the CPU, the GPU's free memory
// for cuda:N (checked like check_device); -1 where it is unknown.
std::int64_t device_free_bytes(Device device);
// Blocks until all work queued on the device has finished (nothing to wait
// for on the CPU). Copies to the host synchronize by themselves; this is for
// timing and for handing memory to code outside the framework.
void synchronize(Device device);

}  // namespace topkformer
