// The CUDA implementation of the kernel interface: cuBLAS for matrix products,
// own kernels for the rest, each tested against its CPU twin.
// See Note [CUDA backend].
#pragma once

#include "topkformer/kernels/backend.h"

// Note [CUDA backend]
// One file per kernel family, named as its CPU twin in ../cpu/, holding the
// kernels and the methods that check the operands and launch them on the
// device's stream (launch.h).

namespace topkformer::kernels {

class CudaBackend final : public Backend {
 public:
#include "kernels/backend_overrides.inc"
};

// The one instance, shared by every GPU (each call acts on its tensors' device).
CudaBackend& cuda_backend();

}  // namespace topkformer::kernels
