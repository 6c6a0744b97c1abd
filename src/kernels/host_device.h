// TKF_HOST_DEVICE marks a function that both backends share: nvcc compiles it
// for the host and the GPU (CUDA kernels call it), the host compiler sees a
// plain function. For scalar formulas that must be the same on every device.
#pragma once

#if defined(__CUDACC__)
#define TKF_HOST_DEVICE __host__ __device__
#else
#define TKF_HOST_DEVICE
#endif
