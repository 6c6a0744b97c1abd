// Helpers of the CPU kernels: strided loops and threading (the device-neutral
// ones are in kernels/dispatch.h).
#pragma once

#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "kernels/dispatch.h"
#include "topkformer/core/tensor.h"

namespace topkformer::kernels::cpu {

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

}  // namespace topkformer::kernels::cpu
