#include "topkformer/core/runtime.h"

#include <cblas.h>
#include <omp.h>

#include <sstream>

#include "build_config.h"
#if TOPKFORMER_WITH_CUDA
#include "cuda/device_info.h"
#endif

namespace topkformer {

void set_num_threads(int threads) {
  const int count = threads > 0 ? threads : omp_get_num_procs();
  omp_set_num_threads(count);
  openblas_set_num_threads(count);
}

int num_threads() {
  return omp_get_max_threads();
}

std::string version() {
  return TOPKFORMER_VERSION;
}

std::string build_info() {
  std::ostringstream out;
  out << "topkformer " << TOPKFORMER_VERSION << " (" << TOPKFORMER_BUILD_TYPE << ")"
#if TOPKFORMER_WITH_CUDA
      << "\n  CUDA: built; " << cuda::device_summary()
#else
      << "\n  CUDA: not built"
#endif
      << "\n  MPI: " << (TOPKFORMER_WITH_MPI ? "built" : "not built")
      << "\n  OpenBLAS: " << openblas_get_config() << ", " << openblas_get_num_threads()
      << " threads"
      << "\n  OpenMP threads: " << omp_get_max_threads();
  return out.str();
}

}  // namespace topkformer
