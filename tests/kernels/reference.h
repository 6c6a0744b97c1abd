// Shared tools for the kernel tests: reading and writing tensors straight from
// storage (so that checks do not depend on copy(), which is itself under test),
// strided input layouts, closeness checks and the f32/f64 test parameter.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "topkformer/core/rng.h"
#include "topkformer/core/tensor.h"
#include "topkformer/kernels/backend.h"

namespace topkformer::testing {

inline kernels::Backend& cpu_kernels() {
  return kernels::backend(Device::cpu());
}

// Storage positions of a tensor's elements in logical (row-major) order.
inline std::vector<std::int64_t> element_positions(const Tensor& t) {
  std::vector<std::int64_t> positions;
  positions.reserve(static_cast<std::size_t>(t.numel()));
  std::vector<std::int64_t> index(static_cast<std::size_t>(t.dim()), 0);
  for (std::int64_t e = 0; e < t.numel(); ++e) {
    std::int64_t position = t.offset();
    for (int d = 0; d < t.dim(); ++d) position += index[d] * t.stride(d);
    positions.push_back(position);
    for (int d = t.dim() - 1; d >= 0; --d) {
      if (++index[d] < t.size(d)) break;
      index[d] = 0;
    }
  }
  return positions;
}

// Calls body(pointer) with the storage base typed by the tensor's dtype.
template <typename Body>
void with_typed_base(const Tensor& t, Body&& body) {
  void* base = t.storage()->data();
  switch (t.dtype()) {
    case DType::f32:
      return body(static_cast<float*>(base));
    case DType::f64:
      return body(static_cast<double*>(base));
    case DType::i32:
      return body(static_cast<std::int32_t*>(base));
    case DType::i64:
      return body(static_cast<std::int64_t*>(base));
    case DType::u8:
      return body(static_cast<std::uint8_t*>(base));
  }
}

// A tensor's values (any dtype, any strides) in logical order, as doubles.
inline std::vector<double> read_values(const Tensor& t) {
  std::vector<double> values;
  if (t.numel() == 0) return values;
  with_typed_base(t, [&](auto* base) {
    for (std::int64_t position : element_positions(t)) values.push_back(double(base[position]));
  });
  return values;
}

inline std::vector<std::int64_t> read_indices(const Tensor& t) {
  std::vector<std::int64_t> indices;
  if (t.numel() == 0) return indices;
  with_typed_base(t, [&](auto* base) {
    for (std::int64_t position : element_positions(t))
      indices.push_back(std::int64_t(base[position]));
  });
  return indices;
}

// Writes `values` (logical order) into any strided view, converting to its dtype.
inline void write_values(const Tensor& t, const std::vector<double>& values) {
  ASSERT_EQ(static_cast<std::int64_t>(values.size()), t.numel());
  if (t.numel() == 0) return;
  with_typed_base(t, [&](auto* base) {
    using T = std::remove_pointer_t<decltype(base)>;
    std::size_t i = 0;
    for (std::int64_t position : element_positions(t)) base[position] = static_cast<T>(values[i++]);
  });
}

// A new contiguous tensor holding `values`.
inline Tensor tensor_of(const Shape& shape, const std::vector<double>& values, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  write_values(t, values);
  return t;
}

// A row mask with key lengths given as values of `length_dtype` (none when empty).
inline kernels::RowMask row_mask_of(bool causal, std::int64_t causal_offset,
                                    const std::vector<double>& key_lengths, DType length_dtype) {
  kernels::RowMask mask;
  mask.causal = causal;
  mask.causal_offset = causal_offset;
  if (!key_lengths.empty()) {
    mask.key_lengths = tensor_of({std::int64_t(key_lengths.size())}, key_lengths, length_dtype);
  }
  return mask;
}

inline Tensor random_normal(const Shape& shape, DType dtype, std::uint64_t seed,
                            double sigma = 1.0) {
  Generator generator(seed);
  return Tensor::randn(shape, generator, dtype, 0.0, sigma);
}

inline Tensor random_uniform(const Shape& shape, DType dtype, std::uint64_t seed, double low,
                             double high) {
  Generator generator(seed);
  return Tensor::rand(shape, generator, dtype, low, high);
}

// Memory layouts of a logical [rows, cols] input. Kernels that accept any
// strides must give the same answer for all of them.
enum class Layout {
  contiguous,
  transposed,        // a transpose view of a [cols, rows] tensor
  padded,            // the middle columns of a wider tensor (row stride > cols)
  every_other,       // slice with step 2 along both dimensions
  row_broadcast,     // [1, cols] expanded (row stride 0)
  column_broadcast,  // [rows, 1] expanded (column stride 0)
  scalar_broadcast,  // [1, 1] expanded (both strides 0)
};

inline const std::vector<Layout>& all_layouts() {
  static const std::vector<Layout> layouts = {
      Layout::contiguous,    Layout::transposed,       Layout::padded,          Layout::every_other,
      Layout::row_broadcast, Layout::column_broadcast, Layout::scalar_broadcast};
  return layouts;
}

inline std::string layout_name(Layout layout) {
  switch (layout) {
    case Layout::contiguous:
      return "contiguous";
    case Layout::transposed:
      return "transposed";
    case Layout::padded:
      return "padded";
    case Layout::every_other:
      return "every_other";
    case Layout::row_broadcast:
      return "row_broadcast";
    case Layout::column_broadcast:
      return "column_broadcast";
    case Layout::scalar_broadcast:
      return "scalar_broadcast";
  }
  return "?";
}

// A [rows, cols] input in `layout` with values uniform in [low, high), a view
// of a tensor on `device` (the values are drawn on the CPU, so every device
// gets the same ones).
inline Tensor strided_input(Layout layout, std::int64_t rows, std::int64_t cols, DType dtype,
                            std::uint64_t seed, double low, double high,
                            Device device = Device::cpu()) {
  const auto draw = [&](const Shape& shape) {
    return random_uniform(shape, dtype, seed, low, high).to(device);
  };
  switch (layout) {
    case Layout::contiguous:
      return draw({rows, cols});
    case Layout::transposed:
      return draw({cols, rows}).transpose(0, 1);
    case Layout::padded:
      return draw({rows, cols + 5}).narrow(1, 2, cols);
    case Layout::every_other:
      return draw({2 * rows, 2 * cols}).slice(0, 1, 2 * rows, 2).slice(1, 0, 2 * cols, 2);
    case Layout::row_broadcast:
      return draw({1, cols}).expand({rows, cols});
    case Layout::column_broadcast:
      return draw({rows, 1}).expand({rows, cols});
    case Layout::scalar_broadcast:
      return draw({1, 1}).expand({rows, cols});
  }
  return {};
}

// Relative tolerance of a result computed in `dtype` with a few roundings.
inline double tolerance(DType dtype) {
  return dtype == DType::f64 ? 1e-12 : 1e-5;
}

// Expects |got - want| <= rel_tol * max(|want|, floor) element by element (the
// floor turns the bound absolute for values smaller than it, where the
// rounding error of the inputs, not of the value, dominates). Infinities and
// NaNs must match exactly. Reports the first mismatch and the count.
inline void expect_all_close(const std::vector<double>& got, const std::vector<double>& want,
                             double rel_tol, double floor = 1.0, const std::string& what = "") {
  ASSERT_EQ(got.size(), want.size()) << what;
  std::size_t mismatches = 0;
  std::ostringstream first;
  for (std::size_t i = 0; i < got.size(); ++i) {
    bool ok;
    if (std::isnan(want[i])) {
      ok = std::isnan(got[i]);
    } else if (std::isinf(want[i])) {
      ok = got[i] == want[i];
    } else {
      ok = std::abs(got[i] - want[i]) <= rel_tol * std::max(std::abs(want[i]), floor);
    }
    if (!ok && mismatches++ == 0) {
      first << "element " << i << ": got " << got[i] << ", want " << want[i];
    }
  }
  EXPECT_EQ(mismatches, 0u) << what << " (" << mismatches << " of " << got.size()
                            << " elements differ; first: " << first.str() << ", rel_tol " << rel_tol
                            << ", floor " << floor << ")";
}

inline void expect_all_close(const Tensor& got, const std::vector<double>& want, double rel_tol,
                             double floor = 1.0, const std::string& what = "") {
  expect_all_close(read_values(got), want, rel_tol, floor, what);
}

// Tests parameterised by the floating dtype: TEST_P(Suite, ...) with
// INSTANTIATE_TEST_SUITE_P(Floating, Suite, floating_dtypes(), dtype_test_name).
class FloatingKernelTest : public ::testing::TestWithParam<DType> {
 protected:
  DType dtype() const { return GetParam(); }
  double tol() const { return tolerance(GetParam()); }
};

inline auto floating_dtypes() {
  return ::testing::Values(DType::f32, DType::f64);
}

inline std::string dtype_test_name(const ::testing::TestParamInfo<DType>& info) {
  return std::string(dtype_name(info.param));
}

}  // namespace topkformer::testing
