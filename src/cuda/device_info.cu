#include <cuda_runtime.h>

#include <sstream>

#include "cuda/device_info.h"

namespace topkformer::cuda {

std::string device_summary() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    return std::string("no GPU visible (cudaGetDeviceCount: ") + cudaGetErrorString(status) + ")";
  }
  std::ostringstream out;
  for (int device = 0; device < count; ++device) {
    cudaDeviceProp properties{};
    if (cudaGetDeviceProperties(&properties, device) != cudaSuccess) continue;
    out << (device ? "\n  " : "") << "cuda:" << device << " " << properties.name << ", sm_"
        << properties.major << properties.minor << ", " << properties.totalGlobalMem / (1024 * 1024)
        << " MiB";
  }
  return count == 0 ? "no GPU visible" : out.str();
}

}  // namespace topkformer::cuda
