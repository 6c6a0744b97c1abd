// Dropout with a mask that is a pure function of (seed, offset, element), so
// the backward pass and recomputed chunks regenerate it instead of storing it.
#include "cpu_backend.h"
#include "dispatch.h"

namespace topkformer::kernels {

using namespace cpu;

void CpuBackend::dropout(const Tensor& x, double p, PhiloxState state, const Tensor& out) {
  TKF_CHECK(x.is_contiguous() && out.is_contiguous(), "dropout: operands must be contiguous");
  check_same_shape(x, out, "dropout");
  TKF_CHECK(p >= 0.0 && p < 1.0, "dropout: probability must be in [0, 1), got ", p);
  const float threshold = static_cast<float>(p);
  dispatch_floating(x.dtype(), "dropout", [&](auto zero) {
    using T = decltype(zero);
    const T* in = typed<T>(x);
    T* result = typed_mut<T>(out);
    const T keep_scale = static_cast<T>(1.0 / (1.0 - p));
    parallel_for(x.numel(), 16, [&](std::int64_t begin, std::int64_t end) {
      std::uint64_t cached_block = ~std::uint64_t{0};
      PhiloxCounter words{};
      for (std::int64_t e = begin; e < end; ++e) {
        const std::uint64_t n = state.offset + std::uint64_t(e);
        if (n / 4 != cached_block) {
          cached_block = n / 4;
          words = philox_block(state.seed, cached_block);
        }
        result[e] = uniform_f32(words[n % 4]) >= threshold ? in[e] * keep_scale : T(0);
      }
    });
  });
}

}  // namespace topkformer::kernels
