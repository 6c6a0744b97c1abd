#include "topkformer/kernels/backend.h"

#include <array>

#include "build_config.h"
#include "cpu/cpu_backend.h"

namespace topkformer::kernels {

namespace {
std::array<Backend*, 2>& backends() {
  static std::array<Backend*, 2> table{nullptr, nullptr};
  return table;
}
}  // namespace

Backend& backend(Device device) {
  if (device.is_cpu()) return cpu_backend();
  Backend* found = backends()[static_cast<int>(device.type)];
  constexpr const char* hint =
      TOPKFORMER_WITH_CUDA
          ? "the CUDA backend has device memory and copies so far; its kernels are not built yet"
          : "configure with -DTOPKFORMER_CUDA=ON on a machine with nvcc";
  TKF_CHECK(found != nullptr, "kernels: this build has no backend for device ", device.str(), " (",
            hint, ")");
  return *found;
}

void register_backend(DeviceType type, Backend* implementation) {
  backends()[static_cast<int>(type)] = implementation;
}

}  // namespace topkformer::kernels
