// Philox random fills (uniform, normal) and dropout with a mask that is a pure
// function of (seed, offset, element), so the backward pass and recomputed
// chunks regenerate it instead of storing it.
#include <array>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/parallel.h"
#include "kernels/random.h"

namespace topkformer::kernels::cpu {

namespace {
// Calls body(e, words) for elements [0, count) where `words` are the
// `per_element` words of element e in the stream (state.seed, state.offset).
// Philox blocks are computed once per four words.
template <int PerElement, typename Body>
void for_each_random_element(std::int64_t count, PhiloxState state, Body&& body) {
  parallel_for(count, 32, [&](std::int64_t begin, std::int64_t end) {
    std::uint64_t cached_block = ~std::uint64_t{0};
    PhiloxCounter block_words{};
    std::array<std::uint32_t, PerElement> words{};
    for (std::int64_t e = begin; e < end; ++e) {
      for (int w = 0; w < PerElement; ++w) {
        const std::uint64_t n = state.offset + std::uint64_t(e) * PerElement + w;
        if (n / 4 != cached_block) {
          cached_block = n / 4;
          block_words = philox_block(state.seed, cached_block);
        }
        words[w] = block_words[n % 4];
      }
      body(e, words);
    }
  });
}
}  // namespace

void CpuBackend::uniform(const Tensor& dst, PhiloxState state, double low, double high) {
  TKF_CHECK(dst.is_contiguous(), "uniform: destination must be contiguous");
  if (dst.dtype() == DType::f32) {
    float* out = typed_mut<float>(dst);
    for_each_random_element<words_per_uniform_f32>(
        dst.numel(), state, [&](std::int64_t e, const auto& words) {
          out[e] = static_cast<float>(low + (high - low) * double(uniform_f32(words[0])));
        });
  } else {
    dst.check_dtype(DType::f64, "uniform");
    double* out = typed_mut<double>(dst);
    for_each_random_element<words_per_uniform_f64>(
        dst.numel(), state, [&](std::int64_t e, const auto& words) {
          out[e] = low + (high - low) * uniform_f64(words[0], words[1]);
        });
  }
}

void CpuBackend::normal(const Tensor& dst, PhiloxState state, double mean, double std) {
  TKF_CHECK(dst.is_contiguous(), "normal: destination must be contiguous");
  dispatch_floating(dst.dtype(), "normal", [&](auto zero) {
    using T = decltype(zero);
    T* out = typed_mut<T>(dst);
    for_each_random_element<words_per_normal>(
        dst.numel(), state, [&](std::int64_t e, const auto& words) {
          out[e] = static_cast<T>(mean + std * normal_from_words(words[0], words[1]));
        });
  });
}

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

}  // namespace topkformer::kernels::cpu
