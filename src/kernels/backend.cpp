#include "topkformer/kernels/backend.h"

#include "build_config.h"
#include "cpu/cpu_backend.h"
#if TOPKFORMER_WITH_CUDA
#include "cuda/backend/cuda_backend.h"
#endif

namespace topkformer::kernels {

Backend& backend(Device device) {
  if (device.is_cpu()) return cpu_backend();
#if TOPKFORMER_WITH_CUDA
  // One backend for every GPU: each call acts on its operands' device.
  return cuda_backend();
#else
  throw Error("kernels: this build has no backend for device " + device.str() +
              " (configure with -DTOPKFORMER_CUDA=ON on a machine with nvcc)");
#endif
}

}  // namespace topkformer::kernels
