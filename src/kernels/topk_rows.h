// The device-neutral part of the topk_rows family (backend.h): the operand
// checks, and the order of every top-k selection on both devices (See Note
// [top-k order]).
#pragma once

#include <cstdint>

#include "kernels/host_device.h"
#include "topkformer/core/tensor.h"

namespace topkformer::kernels {

// Checks x [..., n], values and indices [..., k] (x's shape with the last
// extent k, values of x's dtype), all contiguous, and 1 <= k <= n. The index
// dtype is checked where the kernel dispatches on it.
void check_topk_rows(const Tensor& x, std::int64_t k, const Tensor& values, const Tensor& indices);

// Note [top-k order]
// ~~~~~~~~~~~~~~~~~~~
// The strict order every top-k selection uses, on both devices: larger first,
// every NaN above +inf and equal to every other NaN, -0 equal to +0, ties to
// the lower index.
//
// An element becomes an unsigned key of its width that sorts the same way:
// positive values get the sign bit set, negative ones all bits flipped, so the
// unsigned order is the numeric one; NaN takes the largest key and -0 the key
// of +0. Decided on bits, so that no fast-math flag can change it. Every real
// key is > 0 (-inf maps to 0x007fffff for f32), so key 0 is free for padding.
// Callers pass the element's bits: the bit cast differs between host and GPU.
template <typename T>
struct OrderKeyType;
template <>
struct OrderKeyType<float> {
  using type = std::uint32_t;
  static constexpr type infinity_bits = 0x7f800000u;
};
template <>
struct OrderKeyType<double> {
  using type = std::uint64_t;
  static constexpr type infinity_bits = 0x7ff0000000000000ull;
};
template <typename T>
using OrderKey = typename OrderKeyType<T>::type;

template <typename T>
TKF_HOST_DEVICE inline OrderKey<T> order_key_of_bits(OrderKey<T> bits) {
  using K = OrderKey<T>;
  constexpr K sign = K{1} << (sizeof(K) * 8 - 1);
  const K magnitude = bits & ~sign;
  if (magnitude > OrderKeyType<T>::infinity_bits) return ~K{0};
  if (magnitude == 0) return sign;
  return (bits & sign) ? ~bits : (bits | sign);
}

}  // namespace topkformer::kernels
