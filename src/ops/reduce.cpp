#include "topkformer/ops.h"

#include "op_support.h"

namespace topkformer::ops {

using autograd::record;

namespace {
Shape without_last(const Shape& shape, bool keepdim) {
  Shape result(shape.begin(), shape.end() - 1);
  if (keepdim) result.push_back(1);
  return result;
}

// Rows of the last dimension, as a contiguous [rows, n] tensor.
Tensor as_rows(const Tensor& x, const char* op) {
  check_floating(x, op);
  TKF_CHECK(x.dim() >= 1, op, ": needs a tensor of rank >= 1, got shape ", shape_str(x.shape()));
  return x.contiguous().view({-1, x.size(-1)});
}

Tensor sum_rows(const Tensor& rows) {
  Tensor out = empty_like(rows, {rows.size(0)});
  backend_of(rows).sum_rows(rows, out);
  return out;
}

// Gradient of a last-dimension max: the output gradient placed at the argmax.
Tensor scatter_to_argmax(const Tensor& grad, const Tensor& argmax, const Shape& shape) {
  const std::int64_t n = shape.back();
  const std::int64_t rows = argmax.numel();
  Tensor dx = Tensor::zeros({rows, n, 1}, grad.dtype(), grad.device());
  backend_of(grad).scatter_add_rows(dx, argmax.view({rows, 1}),
                                    grad.contiguous().view({rows, 1, 1}));
  return dx.view(shape);
}
}  // namespace

Tensor sum_to_shape(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  TKF_CHECK(shape.size() <= x.shape().size(), "sum_to_shape: cannot sum ", shape_str(x.shape()),
            " to ", shape_str(shape));
  Shape padded(x.shape().size() - shape.size(), 1);
  padded.insert(padded.end(), shape.begin(), shape.end());
  Tensor out = empty_like(x, padded);
  backend_of(x).sum_to(x, out);
  // Its gradient broadcasts back: the transpose of a broadcast is this sum.
  return record("sum_to_shape", {x}, out.view(shape),
                [padded, in_shape = x.shape()](const auto& g) {
                  return std::vector<Tensor>{g[0].reshape(padded).expand(in_shape)};
                });
}

Tensor sum_last(const Tensor& x, bool keepdim) {
  Tensor out = sum_rows(as_rows(x, "sum_last")).view(without_last(x.shape(), keepdim));
  return record("sum_last", {x}, out, [shape = x.shape()](const auto& g) {
    Shape kept = shape;
    kept.back() = 1;
    return std::vector<Tensor>{g[0].reshape(kept).expand(shape)};
  });
}

Tensor mean_last(const Tensor& x, bool keepdim) {
  TKF_CHECK(x.dim() >= 1 && x.size(-1) > 0, "mean_last: needs a non-empty last dimension, got ",
            shape_str(x.shape()));
  return scale(sum_last(x, keepdim), 1.0 / double(x.size(-1)));
}

Tensor max_last(const Tensor& x, bool keepdim) {
  const Tensor rows = as_rows(x, "max_last");
  Tensor values = empty_like(x, {rows.size(0)});
  Tensor argmax = Tensor::empty({rows.size(0)}, DType::i64, x.device());
  backend_of(x).max_rows(rows, values, argmax);
  Tensor out = values.view(without_last(x.shape(), keepdim));
  return record("max_last", {x}, out, [argmax, shape = x.shape()](const auto& g) {
    return std::vector<Tensor>{scatter_to_argmax(g[0], argmax, shape)};
  });
}

Tensor sum(const Tensor& x) {
  check_floating(x, "sum");
  Tensor out = sum_rows(x.contiguous().view({1, x.numel()})).view({});
  return record("sum", {x}, out, [shape = x.shape()](const auto& g) {
    return std::vector<Tensor>{g[0].expand(shape)};
  });
}

Tensor mean(const Tensor& x) {
  TKF_CHECK(x.numel() > 0, "mean: the tensor is empty, shape ", shape_str(x.shape()));
  return scale(sum(x), 1.0 / double(x.numel()));
}

Tensor max(const Tensor& x) {
  TKF_CHECK(x.numel() > 0, "max: the tensor is empty, shape ", shape_str(x.shape()));
  return max_last(reshape(x, {x.numel()}), false);
}

}  // namespace topkformer::ops
