// The CPU implementation of the kernel interface: OpenBLAS for matrix
// products, OpenMP across rows for the rest. One source file per kernel family.
#pragma once

#include "topkformer/kernels/backend.h"

namespace topkformer::kernels {

class CpuBackend final : public Backend {
 public:
#include "kernels/backend_overrides.inc"
};

CpuBackend& cpu_backend();

}  // namespace topkformer::kernels
