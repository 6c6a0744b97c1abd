#include "cuda/copy.h"

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "cuda/check.h"
#include "cuda/copy_kernel.h"
#include "cuda/device.h"

namespace topkformer::cuda {

namespace {

// Two same-shaped views with their dimensions coalesced: extent-1 dimensions
// dropped, and a dimension merged into the one outside it when both views
// step over the pair as over one dimension. Contiguous views become rank 1.
struct Dims {
  std::vector<std::int64_t> shape, src_strides, dst_strides;
  int rank() const { return static_cast<int>(shape.size()); }
};

Dims coalesce(const Tensor& src, const Tensor& dst) {
  Dims dims;
  for (int d = 0; d < src.dim(); ++d) {
    const std::int64_t extent = src.shape()[d];
    const std::int64_t src_stride = src.strides()[d];
    const std::int64_t dst_stride = dst.strides()[d];
    if (extent == 1) continue;
    if (!dims.shape.empty()) {
      const std::size_t outer = dims.shape.size() - 1;
      if (dims.src_strides[outer] == src_stride * extent &&
          dims.dst_strides[outer] == dst_stride * extent) {
        dims.shape[outer] *= extent;
        dims.src_strides[outer] = src_stride;
        dims.dst_strides[outer] = dst_stride;
        continue;
      }
    }
    dims.shape.push_back(extent);
    dims.src_strides.push_back(src_stride);
    dims.dst_strides.push_back(dst_stride);
  }
  return dims;
}

// Both on device `index`.
void copy_within_device(const Tensor& src, const Tensor& dst, int index) {
  const Dims dims = coalesce(src, dst);
  if (dims.rank() > max_copy_dims) {
    // More dimensions that do not merge than one launch takes: copy the
    // slices along the first dimension (each has one dimension fewer).
    for (std::int64_t i = 0; i < src.size(0); ++i) {
      copy_within_device(src.select(0, i), dst.select(0, i), index);
    }
    return;
  }
  DeviceGuard guard(index);
  const cudaStream_t queue = stream(index);
  const bool dense = dims.rank() == 0 ||
                     (dims.rank() == 1 && dims.src_strides[0] == 1 && dims.dst_strides[0] == 1);
  if (dense && src.dtype() == dst.dtype()) {
    TKF_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), dst.nbytes(),
                                   cudaMemcpyDeviceToDevice, queue));
    return;
  }
  CopyLayout layout;
  layout.rank = dims.rank();
  for (int d = 0; d < dims.rank(); ++d) {
    layout.shape[d] = dims.shape[d];
    layout.src_strides[d] = dims.src_strides[d];
    layout.dst_strides[d] = dims.dst_strides[d];
  }
  launch_strided_copy(src.raw_data(), src.dtype(), dst.raw_data(), dst.dtype(), layout, dst.numel(),
                      queue);
}

// `tensor` itself when it is contiguous with dtype `dtype`, else a contiguous
// copy of it in `dtype` on its own device (on a CUDA device the copy is queued
// on the device's stream).
Tensor dense_as(const Tensor& tensor, DType dtype) {
  if (tensor.dtype() == dtype && tensor.is_contiguous()) return tensor;
  Tensor result = Tensor::empty(tensor.shape(), dtype, tensor.device());
  if (tensor.device().is_cpu()) {
    result.copy_(tensor);
  } else {
    copy_within_device(tensor, result, tensor.device().index);
  }
  return result;
}

// `dst` itself when it is contiguous, else a contiguous buffer of its shape
// and dtype on its device, to copy into dst afterwards.
Tensor dense_target(const Tensor& dst) {
  return dst.is_contiguous() ? dst : Tensor::empty(dst.shape(), dst.dtype(), dst.device());
}

void copy_host_to_device(const Tensor& src, const Tensor& dst) {
  const int index = dst.device().index;
  const Tensor host = dense_as(src, dst.dtype());  // converted on the host
  const Tensor target = dense_target(dst);
  DeviceGuard guard(index);
  const cudaStream_t queue = stream(index);
  TKF_CUDA_CHECK(cudaMemcpyAsync(target.raw_data(), host.raw_data(), host.nbytes(),
                                 cudaMemcpyHostToDevice, queue));
  if (!target.same_tensor(dst)) copy_within_device(target, dst, index);
  // The host buffer (`host` may be a temporary) must stay untouched until the
  // copy has read it.
  TKF_CUDA_CHECK(cudaStreamSynchronize(queue));
}

void copy_device_to_host(const Tensor& src, const Tensor& dst) {
  const int index = src.device().index;
  const Tensor staged = dense_as(src, dst.dtype());  // converted and gathered on the device
  const Tensor target = dense_target(dst);
  {
    DeviceGuard guard(index);
    const cudaStream_t queue = stream(index);
    TKF_CUDA_CHECK(cudaMemcpyAsync(target.raw_data(), staged.raw_data(), staged.nbytes(),
                                   cudaMemcpyDeviceToHost, queue));
    TKF_CUDA_CHECK(cudaStreamSynchronize(queue));
  }
  if (!target.same_tensor(dst)) Tensor(dst).copy_(target);  // host to host
}

void copy_between_devices(const Tensor& src, const Tensor& dst) {
  const int from = src.device().index;
  const int to = dst.device().index;
  const Tensor staged = dense_as(src, dst.dtype());
  const Tensor target = dense_target(dst);
  // The peer copy runs on the destination's stream: wait for the work that
  // produced `staged` on the source's stream first.
  synchronize_stream(from);
  DeviceGuard guard(to);
  const cudaStream_t queue = stream(to);
  TKF_CUDA_CHECK(
      cudaMemcpyPeerAsync(target.raw_data(), to, staged.raw_data(), from, staged.nbytes(), queue));
  if (!target.same_tensor(dst)) copy_within_device(target, dst, to);
  // `staged` goes back to the source device's cache when this returns, where
  // the source's stream may reuse it at once: the copy must be done by then.
  TKF_CUDA_CHECK(cudaStreamSynchronize(queue));
}

}  // namespace

void copy(const Tensor& src, const Tensor& dst) {
  check_same_shape(src, dst, "copy");
  if (dst.numel() == 0) return;
  const Device from = src.device();
  const Device to = dst.device();
  TKF_CHECK(from.is_cuda() || to.is_cuda(), "cuda::copy: neither side is on a CUDA device (",
            from.str(), " to ", to.str(), ")");
  if (from.is_cpu()) {
    copy_host_to_device(src, dst);
  } else if (to.is_cpu()) {
    copy_device_to_host(src, dst);
  } else if (from.index == to.index) {
    copy_within_device(src, dst, to.index);
  } else {
    copy_between_devices(src, dst);
  }
}

}  // namespace topkformer::cuda
