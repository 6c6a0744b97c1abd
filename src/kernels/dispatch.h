// Helpers shared by the kernels of every device (CPU and CUDA host code):
// dtype dispatch, typed pointers, rows of a tensor.
#pragma once

#include <cstdint>
#include <type_traits>

#include "topkformer/core/tensor.h"

namespace topkformer::kernels {

// Calls body(T{}) with T the C++ type of `dtype`, which must be f32 or f64.
template <typename Body>
void dispatch_floating(DType dtype, const char* op, Body&& body) {
  TKF_CHECK(is_floating(dtype), op, ": expected an f32 or f64 tensor, got ", dtype_name(dtype));
  visit_dtype(dtype, [&](auto zero) {
    if constexpr (std::is_floating_point_v<decltype(zero)>) body(zero);
  });
}

// The same for index tensors: i32 or i64.
template <typename Body>
void dispatch_index(DType dtype, const char* op, Body&& body) {
  TKF_CHECK(is_index(dtype), op, ": expected an i32 or i64 index tensor, got ", dtype_name(dtype));
  visit_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    if constexpr (std::is_same_v<T, std::int32_t> || std::is_same_v<T, std::int64_t>) body(zero);
  });
}

// The base pointer of a tensor's storage, typed: strided kernels add element offsets to it.
template <typename T>
T* storage_base(const Tensor& tensor) {
  return static_cast<T*>(tensor.storage()->data());
}

template <typename T>
const T* typed(const Tensor& tensor) {
  return static_cast<const T*>(tensor.raw_data());
}
template <typename T>
T* typed_mut(const Tensor& tensor) {
  return static_cast<T*>(tensor.raw_data());
}

// Number of rows of a tensor seen as [rows, last extent].
inline std::int64_t row_count(const Tensor& tensor) {
  const std::int64_t last = tensor.dim() == 0 ? 1 : tensor.size(-1);
  return last == 0 ? 0 : tensor.numel() / last;
}

}  // namespace topkformer::kernels
