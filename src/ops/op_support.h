// Helpers shared by the op implementations (not part of the public API).
#pragma once

#include "topkformer/autograd/function.h"
#include "topkformer/kernels/backend.h"

namespace topkformer::ops {

inline kernels::Backend& backend_of(const Tensor& tensor) {
  return kernels::backend(tensor.device());
}

// A new uninitialised tensor with x's dtype and device.
inline Tensor empty_like(const Tensor& x, const Shape& shape) {
  return Tensor::empty(shape, x.dtype(), x.device());
}
inline Tensor empty_like(const Tensor& x) {
  return empty_like(x, x.shape());
}

inline void check_floating(const Tensor& x, const char* op) {
  TKF_CHECK(is_floating(x.dtype()), op, ": expected an f32 or f64 tensor, got ",
            dtype_name(x.dtype()), " of shape ", shape_str(x.shape()));
}

// Checks that two operands of a binary op agree on dtype and device; the
// message names the op and both shapes.
inline void check_compatible(const Tensor& a, const Tensor& b, const char* op) {
  TKF_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch, ", dtype_name(a.dtype()), " ",
            shape_str(a.shape()), " vs ", dtype_name(b.dtype()), " ", shape_str(b.shape()));
  TKF_CHECK(a.device() == b.device(), op, ": device mismatch, ", a.device().str(), " ",
            shape_str(a.shape()), " vs ", b.device().str(), " ", shape_str(b.shape()));
}

}  // namespace topkformer::ops
