#include "cuda/device.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "cuda/check.h"
#include "topkformer/core/error.h"

namespace topkformer::cuda {

namespace detail {

void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  // The failed call also set the runtime's last error; clear it so that the
  // next TKF_CUDA_CHECK_LAUNCH does not report this failure again. (Sticky
  // errors, such as a kernel fault, stay whatever is done.)
  static_cast<void>(cudaGetLastError());
  std::string where = file;
  const std::size_t source_dir = where.rfind("/src/");
  if (source_dir != std::string::npos) where = where.substr(source_dir + 1);
  throw Error(topkformer::detail::concat("CUDA error: ", call, " failed with ",
                                         cudaGetErrorName(status), " (", cudaGetErrorString(status),
                                         ") at ", where, ":", line));
}

}  // namespace detail

namespace {

struct VisibleDevices {
  int count = 0;
  std::string reason;  // why count is 0
};

const VisibleDevices& visible_devices() {
  static const VisibleDevices devices = [] {
    VisibleDevices result;
    const cudaError_t status = cudaGetDeviceCount(&result.count);
    if (status != cudaSuccess) {
      static_cast<void>(cudaGetLastError());
      result.count = 0;
      result.reason =
          std::string("no GPU visible (cudaGetDeviceCount: ") + cudaGetErrorString(status) + ")";
    } else if (result.count == 0) {
      result.reason = "no GPU visible (cudaGetDeviceCount reports 0 devices)";
    }
    return result;
  }();
  return devices;
}

// One slot per visible device; a stream is created under the mutex and then
// read without it. Never freed: streams must outlive every static object that
// might still queue work when the process ends.
struct Streams {
  explicit Streams(int count) : slots(new std::atomic<cudaStream_t>[count]) {
    for (int i = 0; i < count; ++i) slots[i].store(nullptr);
  }
  std::mutex mutex;
  std::unique_ptr<std::atomic<cudaStream_t>[]> slots;
};

Streams& streams() {
  static Streams* instance = new Streams(device_count());
  return *instance;
}

}  // namespace

int device_count() {
  return visible_devices().count;
}

std::string unavailable_reason() {
  return visible_devices().reason;
}

void check_device(int index) {
  const int count = device_count();
  if (0 <= index && index < count) return;
  if (count == 0) {
    throw Error(topkformer::detail::concat("device cuda:", index,
                                           " is not available: ", unavailable_reason()));
  }
  const std::string seen =
      count == 1 ? std::string("1 GPU (cuda:0)")
                 : topkformer::detail::concat(count, " GPUs (cuda:0 to cuda:", count - 1, ")");
  throw Error(topkformer::detail::concat("device cuda:", index,
                                         " is not available: this process sees ", seen,
                                         " (CUDA_VISIBLE_DEVICES chooses which GPUs it sees)"));
}

std::int64_t total_memory(int index) {
  check_device(index);
  cudaDeviceProp properties{};
  TKF_CUDA_CHECK(cudaGetDeviceProperties(&properties, index));
  return static_cast<std::int64_t>(properties.totalGlobalMem);
}

std::int64_t free_memory(int index) {
  check_device(index);
  const DeviceGuard guard(index);
  std::size_t free_bytes = 0, total_bytes = 0;
  TKF_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  return static_cast<std::int64_t>(free_bytes);
}

cudaStream_t stream(int index) {
  check_device(index);
  std::atomic<cudaStream_t>& slot = streams().slots[index];
  cudaStream_t found = slot.load(std::memory_order_acquire);
  if (found != nullptr) return found;
  std::lock_guard lock(streams().mutex);
  found = slot.load(std::memory_order_acquire);
  if (found == nullptr) {
    DeviceGuard guard(index);
    TKF_CUDA_CHECK(cudaStreamCreateWithFlags(&found, cudaStreamDefault));
    slot.store(found, std::memory_order_release);
  }
  return found;
}

void synchronize(int index) {
  check_device(index);
  DeviceGuard guard(index);
  TKF_CUDA_CHECK(cudaDeviceSynchronize());
}

void synchronize_stream(int index) {
  TKF_CUDA_CHECK(cudaStreamSynchronize(stream(index)));
}

DeviceGuard::DeviceGuard(int index) : index_(index) {
  TKF_CUDA_CHECK(cudaGetDevice(&previous_));
  if (previous_ != index_) TKF_CUDA_CHECK(cudaSetDevice(index_));
}

DeviceGuard::~DeviceGuard() {
  // A destructor must not throw; restoring a device that was current a moment
  // ago does not fail short of a broken context, which the next call reports.
  if (previous_ != index_) static_cast<void>(cudaSetDevice(previous_));
}

}  // namespace topkformer::cuda
