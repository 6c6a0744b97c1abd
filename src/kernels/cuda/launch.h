// What every CUDA kernel family needs to launch: the device of its operands
// made current, that device's stream, and a grid size.
// See Note [CUDA launches].
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "cuda/check.h"
#include "cuda/device.h"
#include "topkformer/core/tensor.h"

// Note [CUDA launches]
//   void CudaBackend::unary(...) {
//     const cuda::Launch launch(out);               // guard + stream of out's GPU
//     my_kernel<<<cuda::grid_for(n), cuda::threads_per_block, 0, launch.stream()>>>(...);
//     TKF_CUDA_CHECK_LAUNCH();
//   }

namespace topkformer::cuda {

constexpr int threads_per_block = 256;

// Blocks for `count` independent items at `threads` per block, capped so that
// grid-stride loops cover the rest (and i + stride stays far from overflow).
inline unsigned grid_for(std::int64_t count, int threads = threads_per_block,
                         std::int64_t max_blocks = 65536) {
  const std::int64_t blocks = (std::max<std::int64_t>(count, 1) + threads - 1) / threads;
  return static_cast<unsigned>(std::min(blocks, max_blocks));
}

// Makes the GPU of `tensor` current for the scope and hands out its stream.
// Checks that the tensor is on a GPU and that every other operand is on the
// same one (the message names `op`).
class Launch {
 public:
  explicit Launch(const Tensor& tensor, std::initializer_list<const Tensor*> others = {},
                  const char* op = "cuda kernel")
      : index_(checked_index(tensor, others, op)), guard_(index_), stream_(cuda::stream(index_)) {}
  cudaStream_t stream() const { return stream_; }
  int device_index() const { return index_; }

 private:
  static int checked_index(const Tensor& tensor, std::initializer_list<const Tensor*> others,
                           const char* op) {
    TKF_CHECK(tensor.device().is_cuda(), op, ": expected a CUDA tensor, got one on ",
              tensor.device().str());
    for (const Tensor* other : others) {
      if (other == nullptr || !other->defined()) continue;
      TKF_CHECK(other->device() == tensor.device(), op, ": operands on ", tensor.device().str(),
                " and ", other->device().str());
    }
    return tensor.device().index;
  }

  int index_;
  DeviceGuard guard_;
  cudaStream_t stream_;
};

}  // namespace topkformer::cuda
