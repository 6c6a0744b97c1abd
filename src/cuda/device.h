// CUDA devices and their streams (CUDA builds only).
// See Note [one stream per device].
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

// Note [one stream per device]
// Every kernel and every copy the framework issues for device N goes on
// stream(N): one stream per device, created on first use, so work on a device
// runs in the order it was issued and a block freed to the caching allocator
// can be handed to the next request without synchronizing (the next user's
// work is queued behind the last user's). The stream is a blocking stream: it
// also orders with the legacy default stream, so a library call or a
// synchronous cudaMemcpy that lands on stream 0 by mistake is serialised with
// our work instead of racing it. Host code that reads device memory must
// synchronize first; the copies in copy.h do.

namespace topkformer::cuda {

// GPUs visible to this process, queried once; 0 when the runtime reports an
// error (no driver, no device) as well.
int device_count();
// Why device_count() is 0 (the runtime's error), or "" when it is not.
std::string unavailable_reason();
// Throws Error "device cuda:N is not available: ..." unless 0 <= index < device_count().
void check_device(int index);

// The device's global memory in bytes (after check_device).
std::int64_t total_memory(int index);
// The device's free memory in bytes now (cudaMemGetInfo; after check_device).
std::int64_t free_memory(int index);

// The device's stream (created on first use, never destroyed).
cudaStream_t stream(int index);
// Waits for all work queued on the device (cudaDeviceSynchronize).
void synchronize(int index);
// Waits for the work queued on the device's stream.
void synchronize_stream(int index);

// Makes `index` the calling thread's current device for the guard's lifetime
// (cudaMalloc, kernel launches and stream creation act on the current
// device) and restores the previous one afterwards.
class DeviceGuard {
 public:
  explicit DeviceGuard(int index);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
  int index_ = -1;
};

}  // namespace topkformer::cuda
