#include "cuda/copy.h"

#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuda/check.h"
#include "cuda/copy_kernel.h"
#include "cuda/device.h"
#include "cuda/strided_layout.h"

namespace topkformer::cuda {

namespace {

// Both on device `index`.
void copy_within_device(const Tensor& src, const Tensor& dst, int index) {
  const CoalescedDims<2> dims = coalesce<2>(dst.shape(), {&src, &dst});
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
  if (dims.dense() && src.dtype() == dst.dtype()) {
    TKF_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), dst.nbytes(),
                                   cudaMemcpyDeviceToDevice, queue));
    return;
  }
  CopyLayout layout;
  layout.rank = dims.rank();
  for (int d = 0; d < dims.rank(); ++d) {
    layout.shape[d] = dims.shape[d];
    layout.src_strides[d] = dims.strides[0][d];
    layout.dst_strides[d] = dims.strides[1][d];
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
