// Times the work a program queues on a device: wall-clock time on the CPU,
// CUDA events around the work on a GPU.
// See Note [device timing].
#pragma once

#include <chrono>

#include "topkformer/core/device.h"

// Note [device timing]
// GPU kernels run asynchronously, so a host clock would time the launches:
// the timer records CUDA events on the device's stream around the work and
// stop() waits for the second one, so it reports the GPU's own time for
// exactly the work queued in between.

namespace topkformer {

class DeviceTimer {
 public:
  explicit DeviceTimer(Device device);
  ~DeviceTimer();
  DeviceTimer(const DeviceTimer&) = delete;
  DeviceTimer& operator=(const DeviceTimer&) = delete;

  void start();
  // Seconds from start() until the work queued since has finished.
  double stop();

 private:
  Device device_;
  std::chrono::steady_clock::time_point start_time_;
  void* start_event_ = nullptr;  // cudaEvent_t on a GPU
  void* stop_event_ = nullptr;
};

// Host wall-clock seconds since `start`: for logs and timed saves, which
// measure the host's own time, queued device work included or not.
inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace topkformer
