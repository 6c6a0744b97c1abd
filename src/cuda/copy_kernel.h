// The strided copy kernel (CUDA builds only; plain C++17 so that nvcc and the
// host compiler both read it). copy.h is the entry point that uses it.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "topkformer/core/dtype.h"

namespace topkformer::cuda {

// Dimensions one launch handles (after coalescing); copy.cpp splits tensors
// with more into slices.
constexpr int max_copy_dims = 16;

// Two views of one shape, in elements: extents and each view's strides,
// outermost dimension first. Strides may be 0 (broadcast source).
struct CopyLayout {
  int rank = 0;
  std::int64_t shape[max_copy_dims] = {};
  std::int64_t src_strides[max_copy_dims] = {};
  std::int64_t dst_strides[max_copy_dims] = {};
};

// dst[i] = src[i] converted to dst_dtype for each of the `count` (= product of
// the extents, > 0) elements of the layout. src and dst point to the first
// element of each view, on the current device; the views must not overlap.
// Queued on `stream`: returns without waiting.
void launch_strided_copy(const void* src, DType src_dtype, void* dst, DType dst_dtype,
                         const CopyLayout& layout, std::int64_t count, cudaStream_t stream);

}  // namespace topkformer::cuda
