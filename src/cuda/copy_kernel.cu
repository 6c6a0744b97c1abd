#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "cuda/check.h"
#include "cuda/copy_kernel.h"
#include "topkformer/core/error.h"

namespace topkformer::cuda {

namespace {

template <typename Index>
struct KernelLayout {
  int rank;
  Index shape[max_copy_dims];
  Index src_strides[max_copy_dims];
  Index dst_strides[max_copy_dims];
};

// One thread per element in a grid-stride loop: the linear index is split
// into coordinates (innermost dimension fastest), which give both offsets.
template <typename From, typename To, typename Index>
__global__ void strided_copy_kernel(const From* src, To* dst, KernelLayout<Index> layout,
                                    Index count) {
  const Index step = static_cast<Index>(gridDim.x) * static_cast<Index>(blockDim.x);
  for (Index i = static_cast<Index>(blockIdx.x) * static_cast<Index>(blockDim.x) + threadIdx.x;
       i < count; i += step) {
    Index rest = i;
    Index from = 0;
    Index to = 0;
    for (int d = layout.rank - 1; d > 0; --d) {
      const Index coordinate = rest % layout.shape[d];
      rest /= layout.shape[d];
      from += coordinate * layout.src_strides[d];
      to += coordinate * layout.dst_strides[d];
    }
    if (layout.rank > 0) {
      from += rest * layout.src_strides[0];
      to += rest * layout.dst_strides[0];
    }
    dst[to] = static_cast<To>(src[from]);
  }
}

// 32-bit index arithmetic (much cheaper divisions) when every element index
// and every offset of both views fits.
bool fits_32_bits(const CopyLayout& layout, std::int64_t count) {
  constexpr std::int64_t limit = std::numeric_limits<std::int32_t>::max();
  if (count > limit) return false;
  std::int64_t src_last = 0;
  std::int64_t dst_last = 0;
  for (int d = 0; d < layout.rank; ++d) {
    if (layout.src_strides[d] < 0 || layout.dst_strides[d] < 0) return false;
    src_last += (layout.shape[d] - 1) * layout.src_strides[d];
    dst_last += (layout.shape[d] - 1) * layout.dst_strides[d];
  }
  return src_last <= limit && dst_last <= limit;
}

template <typename Index>
KernelLayout<Index> narrow_layout(const CopyLayout& layout) {
  KernelLayout<Index> result{};
  result.rank = layout.rank;
  for (int d = 0; d < layout.rank; ++d) {
    result.shape[d] = static_cast<Index>(layout.shape[d]);
    result.src_strides[d] = static_cast<Index>(layout.src_strides[d]);
    result.dst_strides[d] = static_cast<Index>(layout.dst_strides[d]);
  }
  return result;
}

template <typename From, typename To>
void launch_typed(const void* src, void* dst, const CopyLayout& layout, std::int64_t count,
                  cudaStream_t stream) {
  constexpr int threads = 256;
  // Enough blocks to fill any GPU; a grid-stride loop covers the rest (and
  // keeps i + step far from overflowing a 32-bit index).
  const std::int64_t blocks = std::min<std::int64_t>((count + threads - 1) / threads, 65536);
  const auto* from = static_cast<const From*>(src);
  auto* to = static_cast<To*>(dst);
  if (fits_32_bits(layout, count)) {
    strided_copy_kernel<From, To, std::uint32_t>
        <<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
            from, to, narrow_layout<std::uint32_t>(layout), static_cast<std::uint32_t>(count));
  } else {
    strided_copy_kernel<From, To, std::int64_t>
        <<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
            from, to, narrow_layout<std::int64_t>(layout), count);
  }
  TKF_CUDA_CHECK_LAUNCH();
}

}  // namespace

void launch_strided_copy(const void* src, DType src_dtype, void* dst, DType dst_dtype,
                         const CopyLayout& layout, std::int64_t count, cudaStream_t stream) {
  TKF_CHECK(0 <= layout.rank && layout.rank <= max_copy_dims, "cuda copy: rank ", layout.rank,
            " is outside [0, ", max_copy_dims, "]");
  if (count <= 0) return;
  if (src_dtype == dst_dtype) {
    // The same type on both sides: move the bits, by element size.
    switch (dtype_size(src_dtype)) {
      case 1:
        launch_typed<std::uint8_t, std::uint8_t>(src, dst, layout, count, stream);
        return;
      case 4:
        launch_typed<std::uint32_t, std::uint32_t>(src, dst, layout, count, stream);
        return;
      case 8:
        launch_typed<std::uint64_t, std::uint64_t>(src, dst, layout, count, stream);
        return;
      default:
        throw Error("cuda copy: unsupported element size");
    }
  }
  visit_dtype(src_dtype, [&](auto src_zero) {
    using From = decltype(src_zero);
    visit_dtype(dst_dtype, [&](auto dst_zero) {
      using To = decltype(dst_zero);
      if constexpr (!std::is_same_v<From, To>) {
        launch_typed<From, To>(src, dst, layout, count, stream);
      }
    });
  });
}

}  // namespace topkformer::cuda
