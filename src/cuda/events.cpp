#include "cuda/events.h"

#include <cuda_runtime_api.h>

#include "cuda/check.h"
#include "cuda/device.h"

namespace topkformer::cuda {

void* create_event(int index) {
  DeviceGuard guard(index);
  cudaEvent_t event = nullptr;
  TKF_CUDA_CHECK(cudaEventCreate(&event));
  return event;
}

void destroy_event(void* event) {
  // In a destructor: a failure here has nothing better to do than be ignored.
  static_cast<void>(cudaEventDestroy(static_cast<cudaEvent_t>(event)));
}

void record_event(void* event, int index) {
  DeviceGuard guard(index);
  TKF_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event), stream(index)));
}

double elapsed_seconds(void* start, void* stop) {
  TKF_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(stop)));
  float milliseconds = 0.0f;
  TKF_CUDA_CHECK(cudaEventElapsedTime(&milliseconds, static_cast<cudaEvent_t>(start),
                                      static_cast<cudaEvent_t>(stop)));
  return double(milliseconds) * 1e-3;
}

}  // namespace topkformer::cuda
