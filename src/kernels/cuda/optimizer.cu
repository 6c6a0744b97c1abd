// Fused optimizer updates: one pass over a parameter and its state, one
// thread per element. The arithmetic is the CPU's (kernels/optimizer.h),
// in double whatever the dtype, so both devices agree to the last bit or so
// (where the two compilers fuse a multiply-add differently).
#include <cmath>
#include <cstdint>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/launch.h"
#include "kernels/dispatch.h"
#include "kernels/optimizer.h"

namespace topkformer::kernels {

namespace {

template <typename T>
__global__ void adamw_kernel(T* p, const T* g, T* m, T* v, std::int64_t count, AdamWStep step) {
  const std::int64_t stride = std::int64_t(gridDim.x) * blockDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride) {
    adamw_element(p[i], g[i], m[i], v[i], step);
  }
}

template <typename T>
__global__ void sgd_kernel(T* p, const T* g, T* u, std::int64_t count, SgdStep step) {
  const std::int64_t stride = std::int64_t(gridDim.x) * blockDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride) {
    sgd_element(p[i], g[i], u[i], step);
  }
}

}  // namespace

void CudaBackend::adamw_update(const Tensor& parameter, const Tensor& grad,
                               const Tensor& first_moment, const Tensor& second_moment,
                               const AdamWStep& step) {
  check_update_operands({&parameter, &grad, &first_moment, &second_moment}, "adamw_update");
  const cuda::Launch launch(parameter, {&grad, &first_moment, &second_moment}, "adamw_update");
  const std::int64_t count = parameter.numel();
  if (count == 0) return;
  dispatch_floating(parameter.dtype(), "adamw_update", [&](auto zero) {
    using T = decltype(zero);
    adamw_kernel<<<cuda::grid_for(count), cuda::threads_per_block, 0, launch.stream()>>>(
        typed_mut<T>(parameter), typed<T>(grad), typed_mut<T>(first_moment),
        typed_mut<T>(second_moment), count, step);
    TKF_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::sgd_update(const Tensor& parameter, const Tensor& grad, const Tensor& momentum,
                             const SgdStep& step) {
  check_update_operands({&parameter, &grad, &momentum}, "sgd_update");
  const cuda::Launch launch(parameter, {&grad, &momentum}, "sgd_update");
  const std::int64_t count = parameter.numel();
  if (count == 0) return;
  dispatch_floating(parameter.dtype(), "sgd_update", [&](auto zero) {
    using T = decltype(zero);
    sgd_kernel<<<cuda::grid_for(count), cuda::threads_per_block, 0, launch.stream()>>>(
        typed_mut<T>(parameter), typed<T>(grad), typed_mut<T>(momentum), count, step);
    TKF_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace topkformer::kernels
