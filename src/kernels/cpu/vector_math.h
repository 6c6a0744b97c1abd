// exp for f32 that the compiler turns into vector instructions. glibc's expf is
// a scalar call, and the cross-entropy over a 16K-word vocabulary and the
// attention softmax spend most of their time in it; this version is inline
// float arithmetic, so a loop over a row runs 8 lanes at a time (AVX2).
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>

namespace topkformer::kernels::cpu {

// e^x for f32 within 2 ulp of expf on [-87.3, 88.7]: 0 below it (expf gives
// denormals there, which no softmax weight or gradient can tell from 0), +inf
// above it, NaN for NaN. The Cephes scheme: x = n ln 2 + r with |r| <= ln 2 / 2,
// e^r from a degree-6 polynomial, 2^n from the exponent bits.
inline float exp_f32(float x) {
  constexpr float log2e = 1.44269504088896341f;
  constexpr float ln2_high = 0.693359375f;  // ln 2 = ln2_high + ln2_low, ln2_high exact in 10 bits
  constexpr float ln2_low = -2.12194440e-4f;
  constexpr float lowest = -87.3365447f;  // e^lowest is the smallest normal float
  constexpr float highest = 88.3762626f;
  // Ternaries rather than fmin/fmax: they compile to vector min/max (NaN is handled below).
  const float clamped = x < lowest ? lowest : (x > highest ? highest : x);
  const float n = std::floor(clamped * log2e + 0.5f);
  const float r = clamped - n * ln2_high - n * ln2_low;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const float scale = std::bit_cast<float>((static_cast<std::int32_t>(n) + 127) << 23);
  // Selects, not branches: a loop body with control flow is not vectorised.
  float result = p * scale;
  result = x < lowest ? 0.0f : result;
  result = x > highest ? INFINITY : result;
  return x != x ? x : result;
}

// exp_f32 for f32; std::exp otherwise (f64 keeps full precision: the gradient checks run in it).
template <typename T>
T vector_exp(T x) {
  if constexpr (std::is_same_v<T, float>) {
    return exp_f32(x);
  } else {
    return std::exp(x);
  }
}

}  // namespace topkformer::kernels::cpu
