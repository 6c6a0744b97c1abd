// Dropout with a mask that is a pure function of (seed, offset, element), so
// the backward pass and recomputed chunks regenerate it instead of storing it.
#include "cpu_backend.h"
#include "dispatch.h"
#include "kernels/pointwise_check.h"

namespace topkformer::kernels {

using namespace cpu;

void CpuBackend::dropout(const Tensor& x, double p, PhiloxState state,
                         const DropoutAddressing& addressing, const Tensor& out) {
  const DropoutPlan plan = check_dropout(x, p, addressing, out);
  if (x.numel() == 0) return;
  const std::int64_t n = plan.n;
  const std::int64_t row_words = plan.row_words;
  const std::uint32_t threshold = plan.threshold;
  Tensor columns;
  if (addressing.columns.defined()) columns = addressing.columns.to(DType::i64).contiguous();
  const std::int64_t* column = columns.defined() ? typed<std::int64_t>(columns) : nullptr;
  dispatch_floating(x.dtype(), "dropout", [&](auto zero) {
    using T = decltype(zero);
    const T* in = typed<T>(x);
    T* result = typed_mut<T>(out);
    const T keep_scale = static_cast<T>(1.0 / (1.0 - p));
    parallel_for(row_count(x), n * 16, [&](std::int64_t begin, std::int64_t end) {
      std::uint64_t cached_block = ~std::uint64_t{0};
      PhiloxCounter words{};
      for (std::int64_t r = begin; r < end; ++r) {
        const std::uint64_t row_start = state.offset + addressing.global_row(r) * row_words;
        for (std::int64_t c = 0; c < n; ++c) {
          const std::int64_t e = r * n + c;
          const std::uint64_t word = row_start + (column ? column[e] : c);
          if (word / 4 != cached_block) {
            cached_block = word / 4;
            words = philox_block(state.seed, cached_block);
          }
          result[e] = (words[word % 4] >> 8) >= threshold ? in[e] * keep_scale : T(0);
        }
      }
    });
  });
}

}  // namespace topkformer::kernels
