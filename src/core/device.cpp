#include "topkformer/core/device.h"

#include <unistd.h>

#include <charconv>
#include <limits>

#include "build_config.h"
#include "topkformer/core/error.h"
#include "topkformer/core/runtime.h"
#if TOPKFORMER_WITH_CUDA
#include "cuda/device.h"
#endif

namespace topkformer {

Device Device::parse(const std::string& text) {
  for (const DeviceType type : all_values<DeviceType>()) {
    if (text == device_type_names[std::size_t(type)]) return {type, 0};
  }
  const std::string cuda_prefix = enum_name(device_type_names, DeviceType::cuda) + ":";
  const std::size_t digits_at = cuda_prefix.size();
  if (text.starts_with(cuda_prefix) && text.size() > digits_at &&
      text.find_first_not_of("0123456789", digits_at) == std::string::npos) {
    // from_chars, not stoi: an index too large for an int must be an Error
    // naming it (stoi's std::out_of_range says only "stoi").
    int index = 0;
    const char* digits = text.data() + digits_at;
    const auto [end, error] = std::from_chars(digits, text.data() + text.size(), index);
    if (error == std::errc() && end == text.data() + text.size()) return cuda(index);
    throw Error("device: the index of '" + text + "' is out of range (at most " +
                std::to_string(std::numeric_limits<int>::max()) + ")");
  }
  throw Error("device: expected " + join_names(device_type_names, ", ") + " or " + cuda_prefix +
              "N, got '" + text + "'");
}

std::string Device::str() const {
  const std::string type_name = enum_name(device_type_names, type);
  return is_cpu() ? type_name : type_name + ":" + std::to_string(index);
}

int cuda_device_count() {
#if TOPKFORMER_WITH_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

std::string cuda_unavailable_reason() {
#if TOPKFORMER_WITH_CUDA
  return cuda::unavailable_reason();
#else
  return "this build has no CUDA backend (configure with -DTOPKFORMER_CUDA=ON on a machine with "
         "nvcc)";
#endif
}

void check_device(Device device) {
  if (device.is_cpu()) return;
#if TOPKFORMER_WITH_CUDA
  cuda::check_device(device.index);
#else
  throw Error("device " + device.str() + " is not available: " + cuda_unavailable_reason());
#endif
}

std::int64_t device_memory_bytes(Device device) {
  if (device.is_cpu()) {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page_bytes = ::sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page_bytes > 0 ? std::int64_t{pages} * page_bytes : -1;
  }
#if TOPKFORMER_WITH_CUDA
  return cuda::total_memory(device.index);
#else
  return -1;
#endif
}

std::int64_t device_free_bytes(Device device) {
  if (device.is_cpu()) return available_memory_bytes();
#if TOPKFORMER_WITH_CUDA
  return cuda::free_memory(device.index);
#else
  return -1;
#endif
}

void synchronize(Device device) {
  if (device.is_cpu()) return;
  check_device(device);
#if TOPKFORMER_WITH_CUDA
  cuda::synchronize(device.index);
#endif
}

}  // namespace topkformer
