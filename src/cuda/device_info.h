// What the CUDA runtime reports about this machine's GPUs (CUDA builds only).
#pragma once

#include <string>

namespace topkformer::cuda {

// One line per visible GPU, or the reason none is visible.
std::string device_summary();

}  // namespace topkformer::cuda
