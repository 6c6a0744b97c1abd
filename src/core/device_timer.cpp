#include "topkformer/core/device_timer.h"

#include "build_config.h"
#include "topkformer/core/error.h"
#if TOPKFORMER_WITH_CUDA
#include "cuda/events.h"
#endif

namespace topkformer {

DeviceTimer::DeviceTimer(Device device) : device_(device) {
  check_device(device);
#if TOPKFORMER_WITH_CUDA
  if (device.is_cuda()) {
    start_event_ = cuda::create_event(device.index);
    stop_event_ = cuda::create_event(device.index);
  }
#endif
}

DeviceTimer::~DeviceTimer() {
#if TOPKFORMER_WITH_CUDA
  if (start_event_ != nullptr) cuda::destroy_event(start_event_);
  if (stop_event_ != nullptr) cuda::destroy_event(stop_event_);
#endif
}

void DeviceTimer::start() {
#if TOPKFORMER_WITH_CUDA
  if (device_.is_cuda()) {
    cuda::record_event(start_event_, device_.index);
    return;
  }
#endif
  start_time_ = std::chrono::steady_clock::now();
}

double DeviceTimer::stop() {
#if TOPKFORMER_WITH_CUDA
  if (device_.is_cuda()) {
    cuda::record_event(stop_event_, device_.index);
    return cuda::elapsed_seconds(start_event_, stop_event_);
  }
#endif
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time_).count();
}

}  // namespace topkformer
