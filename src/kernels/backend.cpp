#include "topkformer/kernels/backend.h"

#include <array>

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
  TKF_CHECK(found != nullptr, "kernels: this build has no backend for device ", device.str(),
            " (configure with -DTOPKFORMER_CUDA=ON on a machine with nvcc)");
  return *found;
}

void register_backend(DeviceType type, Backend* implementation) {
  backends()[static_cast<int>(type)] = implementation;
}

}  // namespace topkformer::kernels
