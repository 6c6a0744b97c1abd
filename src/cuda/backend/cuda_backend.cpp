#include "cuda/backend/cuda_backend.h"

namespace topkformer::kernels {

CudaBackend& cuda_backend() {
  static CudaBackend instance;
  return instance;
}

}  // namespace topkformer::kernels
