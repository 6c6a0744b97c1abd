// Same-shaped strided views that one CUDA kernel walks element by element:
// their dimensions coalesced on the host (copies, elementwise kernels), and
// the element offsets a kernel derives from a linear index.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/host_device.h"
#include "topkformer/core/tensor.h"

namespace topkformer::cuda {

// Same-shaped views with their dimensions coalesced: extent-1 dimensions
// dropped, and a dimension merged into the one outside it when every view
// steps over the pair as over one dimension. Contiguous views become rank 1.
template <std::size_t Views>
struct CoalescedDims {
  std::vector<std::int64_t> shape;
  std::array<std::vector<std::int64_t>, Views> strides;

  int rank() const { return static_cast<int>(shape.size()); }
  // Every view holds its elements one after the other, in order.
  bool dense() const {
    if (rank() == 0) return true;
    if (rank() > 1) return false;
    for (const auto& view_strides : strides) {
      if (view_strides[0] != 1) return false;
    }
    return true;
  }
};

template <std::size_t Views>
CoalescedDims<Views> coalesce(const Shape& shape, const std::array<const Tensor*, Views>& views) {
  CoalescedDims<Views> dims;
  for (int d = 0; d < static_cast<int>(shape.size()); ++d) {
    const std::int64_t extent = shape[d];
    if (extent == 1) continue;
    bool merges = !dims.shape.empty();
    for (std::size_t v = 0; v < Views && merges; ++v) {
      merges = dims.strides[v].back() == views[v]->stride(d) * extent;
    }
    if (merges) {
      dims.shape.back() *= extent;
      for (std::size_t v = 0; v < Views; ++v) dims.strides[v].back() = views[v]->stride(d);
    } else {
      dims.shape.push_back(extent);
      for (std::size_t v = 0; v < Views; ++v) dims.strides[v].push_back(views[v]->stride(d));
    }
  }
  return dims;
}

// Dimensions one launch of a strided kernel takes (after coalescing); views
// with more are split into slices by the caller.
constexpr int max_strided_dims = 16;

// The coalesced layout as a kernel argument, in the index type of the launch.
template <std::size_t Views, typename Index>
struct StridedOffsets {
  int rank = 0;
  Index shape[max_strided_dims] = {};
  Index strides[Views][max_strided_dims] = {};

  // The element offset in each view of the element with row-major index i
  // (the innermost dimension fastest).
  TKF_HOST_DEVICE void offsets_of(Index i, Index (&offsets)[Views]) const {
    for (std::size_t v = 0; v < Views; ++v) offsets[v] = 0;
    for (int d = rank - 1; d > 0; --d) {
      const Index coordinate = i % shape[d];
      i /= shape[d];
      for (std::size_t v = 0; v < Views; ++v) offsets[v] += coordinate * strides[v][d];
    }
    if (rank > 0) {
      for (std::size_t v = 0; v < Views; ++v) offsets[v] += i * strides[v][0];
    }
  }
};

// Whether `count` elements and every offset of every view fit in 32 bits,
// where index arithmetic (above all the divisions) is much cheaper.
template <std::size_t Views>
bool fits_32_bits(const CoalescedDims<Views>& dims, std::int64_t count) {
  constexpr std::int64_t limit = std::numeric_limits<std::int32_t>::max();
  if (count > limit) return false;
  for (const auto& view_strides : dims.strides) {
    std::int64_t last = 0;
    for (int d = 0; d < dims.rank(); ++d) {
      if (view_strides[d] < 0) return false;
      last += (dims.shape[d] - 1) * view_strides[d];
    }
    if (last > limit) return false;
  }
  return true;
}

// The kernel argument for dims (rank <= max_strided_dims; for Index of 32
// bits, fits_32_bits must hold).
template <typename Index, std::size_t Views>
StridedOffsets<Views, Index> strided_offsets(const CoalescedDims<Views>& dims) {
  TKF_CHECK(dims.rank() <= max_strided_dims, "strided kernel: rank ", dims.rank(), " exceeds ",
            max_strided_dims);
  StridedOffsets<Views, Index> result;
  result.rank = dims.rank();
  for (int d = 0; d < dims.rank(); ++d) {
    result.shape[d] = static_cast<Index>(dims.shape[d]);
    for (std::size_t v = 0; v < Views; ++v) {
      result.strides[v][d] = static_cast<Index>(dims.strides[v][d]);
    }
  }
  return result;
}

}  // namespace topkformer::cuda
