// The CPU implementation of the kernel interface: OpenBLAS for matrix
// products, OpenMP across rows for the rest. One source file per kernel
// family, named as the family's section in backend.h.
#pragma once

#include "topkformer/kernels/backend.h"

namespace topkformer::kernels::cpu {

class CpuBackend final : public Backend {
 public:
#include "kernels/backend_overrides.inc"
};

CpuBackend& cpu_backend();

}  // namespace topkformer::kernels::cpu
