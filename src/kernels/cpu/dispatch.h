// Helpers shared by the CPU kernels: dtype dispatch, strided loops, threading.
#pragma once

#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "topkformer/core/tensor.h"

namespace topkformer::kernels::cpu {

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

// Runs body(begin, end) over [0, count) split across OpenMP threads, but only
// when there is enough work (count * cost_per_item elementary operations) to
// pay for waking the threads. Static partitioning keeps results independent
// of scheduling.
template <typename Body>
void parallel_for(std::int64_t count, std::int64_t cost_per_item, Body&& body) {
  constexpr std::int64_t min_parallel_work = 1 << 15;
  if (count <= 1 || count * cost_per_item < min_parallel_work || omp_get_max_threads() == 1 ||
      omp_in_parallel()) {
    if (count > 0) body(std::int64_t{0}, count);
    return;
  }
#pragma omp parallel
  {
    const std::int64_t threads = omp_get_num_threads();
    const std::int64_t thread = omp_get_thread_num();
    const std::int64_t begin = count * thread / threads;
    const std::int64_t end = count * (thread + 1) / threads;
    if (begin < end) body(begin, end);
  }
}

// Iterates a set of same-shaped strided operands as rows of an inner
// dimension: dimensions are coalesced where every operand allows it, so
// contiguous operands become one long row.
template <int Operands>
class StridedRows {
 public:
  StridedRows(const Shape& shape, const std::array<const Tensor*, Operands>& operands) {
    for (int d = 0; d < static_cast<int>(shape.size()); ++d) {
      if (shape[d] == 1) continue;
      const bool merge = !extents_.empty() && [&] {
        for (int k = 0; k < Operands; ++k) {
          if (strides_[k].back() != operands[k]->stride(d) * shape[d]) return false;
        }
        return true;
      }();
      if (merge) {
        extents_.back() *= shape[d];
        for (int k = 0; k < Operands; ++k) strides_[k].back() = operands[k]->stride(d);
      } else {
        extents_.push_back(shape[d]);
        for (int k = 0; k < Operands; ++k) strides_[k].push_back(operands[k]->stride(d));
      }
    }
    if (extents_.empty()) {
      extents_.push_back(1);
      for (int k = 0; k < Operands; ++k) strides_[k].push_back(1);
    }
    for (int k = 0; k < Operands; ++k) {
      base_[k] = operands[k]->offset();
      inner_stride_[k] = strides_[k].back();
    }
    inner_ = extents_.back();
    rows_ = shape_numel(shape) / std::max<std::int64_t>(inner_, 1);
    if (shape_numel(shape) == 0) rows_ = 0;
  }

  std::int64_t rows() const { return rows_; }
  std::int64_t inner() const { return inner_; }
  std::int64_t inner_stride(int operand) const { return inner_stride_[operand]; }
  // Element offset (in the operand's storage) of the first element of `row`.
  std::int64_t row_offset(int operand, std::int64_t row) const {
    std::int64_t position = base_[operand];
    for (int d = static_cast<int>(extents_.size()) - 2; d >= 0; --d) {
      position += (row % extents_[d]) * strides_[operand][d];
      row /= extents_[d];
    }
    return position;
  }

 private:
  std::vector<std::int64_t> extents_;
  std::array<std::vector<std::int64_t>, Operands> strides_;
  std::array<std::int64_t, Operands> base_{};
  std::array<std::int64_t, Operands> inner_stride_{};
  std::int64_t inner_ = 1;
  std::int64_t rows_ = 0;
};

// Number of rows of a tensor seen as [rows, last extent].
inline std::int64_t row_count(const Tensor& tensor) {
  const std::int64_t last = tensor.dim() == 0 ? 1 : tensor.size(-1);
  return last == 0 ? 0 : tensor.numel() / last;
}

}  // namespace topkformer::kernels::cpu
