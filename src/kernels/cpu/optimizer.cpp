// Fused optimizer updates: one pass over a parameter and its state.
#include "kernels/optimizer.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/parallel.h"

namespace topkformer::kernels::cpu {

void CpuBackend::adamw_update(const Tensor& parameter, const Tensor& grad,
                              const Tensor& first_moment, const Tensor& second_moment,
                              const AdamWStep& step) {
  check_update_operands({&parameter, &grad, &first_moment, &second_moment}, "adamw_update");
  dispatch_floating(parameter.dtype(), "adamw_update", [&](auto zero) {
    using T = decltype(zero);
    T* p = typed_mut<T>(parameter);
    const T* g = typed<T>(grad);
    T* m = typed_mut<T>(first_moment);
    T* v = typed_mut<T>(second_moment);
    parallel_for(parameter.numel(), 16, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) adamw_element(p[i], g[i], m[i], v[i], step);
    });
  });
}

void CpuBackend::sgd_update(const Tensor& parameter, const Tensor& grad, const Tensor& momentum,
                            const SgdStep& step) {
  check_update_operands({&parameter, &grad, &momentum}, "sgd_update");
  dispatch_floating(parameter.dtype(), "sgd_update", [&](auto zero) {
    using T = decltype(zero);
    T* p = typed_mut<T>(parameter);
    const T* g = typed<T>(grad);
    T* u = typed_mut<T>(momentum);
    parallel_for(parameter.numel(), 8, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) sgd_element(p[i], g[i], u[i], step);
    });
  });
}

}  // namespace topkformer::kernels::cpu
