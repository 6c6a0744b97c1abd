#include "topkformer/kernels/backend.h"

#include "build_config.h"
#include "kernels/cpu/cpu_backend.h"
#if TOPKFORMER_WITH_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif

namespace topkformer::kernels {

cpu::CpuBackend& cpu::cpu_backend() {
  static CpuBackend instance;
  return instance;
}

#if TOPKFORMER_WITH_CUDA
CudaBackend& cuda_backend() {
  static CudaBackend instance;
  return instance;
}
#endif

Backend& backend(Device device) {
  if (device.is_cpu()) return cpu::cpu_backend();
#if TOPKFORMER_WITH_CUDA
  // One backend for every GPU: each call acts on its operands' device.
  return cuda_backend();
#else
  throw Error("kernels: this build has no backend for device " + device.str() +
              " (configure with -DTOPKFORMER_CUDA=ON on a machine with nvcc)");
#endif
}

}  // namespace topkformer::kernels
