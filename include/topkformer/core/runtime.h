// Process-wide runtime settings: threads and what this build contains.
#pragma once

#include <string>

namespace topkformer {

// Sets the threads used by OpenMP kernels and by OpenBLAS (0 = all cores).
void set_num_threads(int threads);
int num_threads();

// Version and build configuration, e.g. for `topkformer --version` and logs.
std::string version();
std::string build_info();

}  // namespace topkformer
