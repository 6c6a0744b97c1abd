// Copies (with dtype conversion), fills, arange and Philox random fills.
#include "cpu_backend.h"
#include "dispatch.h"

namespace topkformer::kernels {

CpuBackend& cpu_backend() {
  static CpuBackend instance;
  return instance;
}

using namespace cpu;

void CpuBackend::copy(const Tensor& src, const Tensor& dst) {
  TKF_CHECK(src.device().is_cpu() && dst.device().is_cpu(), "copy: no path from ",
            src.device().str(), " to ", dst.device().str(), " in this build");
  StridedRows<2> loop(dst.shape(), {&src, &dst});
  visit_dtype(src.dtype(), [&](auto src_zero) {
    using From = decltype(src_zero);
    visit_dtype(dst.dtype(), [&](auto dst_zero) {
      using To = decltype(dst_zero);
      const From* from = storage_base<From>(src);
      To* to = storage_base<To>(dst);
      const std::int64_t s0 = loop.inner_stride(0), s1 = loop.inner_stride(1);
      parallel_for(loop.rows(), loop.inner(), [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t row = begin; row < end; ++row) {
          const From* in = from + loop.row_offset(0, row);
          To* out = to + loop.row_offset(1, row);
          for (std::int64_t i = 0; i < loop.inner(); ++i) out[i * s1] = static_cast<To>(in[i * s0]);
        }
      });
    });
  });
}

void CpuBackend::fill(const Tensor& dst, double value) {
  StridedRows<1> loop(dst.shape(), {&dst});
  visit_dtype(dst.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* base = storage_base<T>(dst);
    const T filler = static_cast<T>(value);
    const std::int64_t stride = loop.inner_stride(0);
    parallel_for(loop.rows(), loop.inner(), [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t row = begin; row < end; ++row) {
        T* out = base + loop.row_offset(0, row);
        for (std::int64_t i = 0; i < loop.inner(); ++i) out[i * stride] = filler;
      }
    });
  });
}

void CpuBackend::arange(const Tensor& dst, double start, double step) {
  visit_dtype(dst.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* out = typed_mut<T>(dst);
    for (std::int64_t i = 0; i < dst.numel(); ++i)
      out[i] = static_cast<T>(start + double(i) * step);
  });
}

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

}  // namespace topkformer::kernels
