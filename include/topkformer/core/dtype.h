// Element types a tensor can hold.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace topkformer {

enum class DType : std::uint8_t { f32, f64, i32, i64, u8 };

constexpr std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return 4;
    case DType::f64:
      return 8;
    case DType::i32:
      return 4;
    case DType::i64:
      return 8;
    case DType::u8:
      return 1;
  }
  return 0;
}

constexpr std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return "f32";
    case DType::f64:
      return "f64";
    case DType::i32:
      return "i32";
    case DType::i64:
      return "i64";
    case DType::u8:
      return "u8";
  }
  return "?";
}

constexpr bool is_floating(DType dtype) {
  return dtype == DType::f32 || dtype == DType::f64;
}
constexpr bool is_index(DType dtype) {
  return dtype == DType::i32 || dtype == DType::i64;
}

// The DType of a C++ element type, for typed element access.
template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::f32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::f64;
}
template <>
constexpr DType dtype_of<std::int32_t>() {
  return DType::i32;
}
template <>
constexpr DType dtype_of<std::int64_t>() {
  return DType::i64;
}
template <>
constexpr DType dtype_of<std::uint8_t>() {
  return DType::u8;
}

// Calls body(T{}) with the C++ type T of `dtype` (float, double, int32_t,
// int64_t, uint8_t): one switch for every kernel that handles any dtype, on
// the CPU and in CUDA host code alike.
template <typename Body>
void visit_dtype(DType dtype, Body&& body) {
  switch (dtype) {
    case DType::f32:
      body(float{});
      return;
    case DType::f64:
      body(double{});
      return;
    case DType::i32:
      body(std::int32_t{});
      return;
    case DType::i64:
      body(std::int64_t{});
      return;
    case DType::u8:
      body(std::uint8_t{});
      return;
  }
}

}  // namespace topkformer
