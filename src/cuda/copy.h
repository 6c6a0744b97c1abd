// Copies that involve a CUDA device (CUDA builds only).
#pragma once

#include "topkformer/core/tensor.h"

namespace topkformer::cuda {

// dst = src converted to dst's dtype, where src or dst (or both) is on a CUDA
// device: the contract of kernels::Backend::copy (one shape, any strides on
// either side, including broadcast sources) for host to device, device to
// host, within a device and between two devices. Tensor::copy_ routes here,
// and so will the CUDA backend's copy.
//
// A copy within one device is queued on its stream and returns at once.
// Copies from or to the host and between devices return when the data has
// arrived (the device's stream is synchronized), so the host may read or
// reuse its memory right away.
void copy(const Tensor& src, const Tensor& dst);

}  // namespace topkformer::cuda
