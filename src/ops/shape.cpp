#include "topkformer/ops.h"

#include <numeric>

#include "op_support.h"

namespace topkformer::ops {

using autograd::record;

namespace {
// The gradient of a view that picks part of x: zeros of x's shape with the
// output gradient copied into the same part.
template <typename PickPart>
Tensor place_in_zeros(const Tensor& grad, const Shape& shape, PickPart pick_part) {
  Tensor dx = Tensor::zeros(shape, grad.dtype(), grad.device());
  pick_part(dx).copy_(grad);
  return dx;
}
}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) {
  return record("reshape", {x}, x.reshape(shape), [in_shape = x.shape()](const auto& g) {
    return std::vector<Tensor>{g[0].reshape(in_shape)};
  });
}

Tensor permute(const Tensor& x, const std::vector<int>& dims) {
  Tensor out = x.permute(dims);
  std::vector<int> inverse(dims.size());
  for (std::size_t i = 0; i < dims.size(); ++i) {
    inverse[normalize_dim(dims[i], x.dim(), "permute")] = static_cast<int>(i);
  }
  return record("permute", {x}, out,
                [inverse](const auto& g) { return std::vector<Tensor>{g[0].permute(inverse)}; });
}

Tensor transpose(const Tensor& x, int dim0, int dim1) {
  std::vector<int> order(x.dim());
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[normalize_dim(dim0, x.dim(), "transpose")],
            order[normalize_dim(dim1, x.dim(), "transpose")]);
  return permute(x, order);
}

Tensor slice(const Tensor& x, int dim, std::int64_t start, std::int64_t end, std::int64_t step) {
  Tensor out = x.slice(dim, start, end, step);
  return record("slice", {x}, out, [shape = x.shape(), dim, start, end, step](const auto& g) {
    return std::vector<Tensor>{place_in_zeros(
        g[0], shape, [&](const Tensor& dx) { return dx.slice(dim, start, end, step); })};
  });
}

Tensor narrow(const Tensor& x, int dim, std::int64_t start, std::int64_t length) {
  return slice(x, dim, start, start + length);
}

Tensor select(const Tensor& x, int dim, std::int64_t index) {
  Tensor out = x.select(dim, index);
  return record("select", {x}, out, [shape = x.shape(), dim, index](const auto& g) {
    return std::vector<Tensor>{
        place_in_zeros(g[0], shape, [&](const Tensor& dx) { return dx.select(dim, index); })};
  });
}

Tensor unsqueeze(const Tensor& x, int dim) {
  return record("unsqueeze", {x}, x.unsqueeze(dim), [shape = x.shape()](const auto& g) {
    return std::vector<Tensor>{g[0].reshape(shape)};
  });
}

Tensor squeeze(const Tensor& x, int dim) {
  return record("squeeze", {x}, x.squeeze(dim), [shape = x.shape()](const auto& g) {
    return std::vector<Tensor>{g[0].reshape(shape)};
  });
}

Tensor expand(const Tensor& x, const Shape& shape) {
  return record("expand", {x}, x.expand(shape), [in_shape = x.shape()](const auto& g) {
    return std::vector<Tensor>{sum_to_shape(g[0], in_shape)};
  });
}

Tensor contiguous(const Tensor& x) {
  return record("contiguous", {x}, x.contiguous(),
                [](const auto& g) { return std::vector<Tensor>{g[0]}; });
}

Tensor concat(const std::vector<Tensor>& tensors, int dim) {
  TKF_CHECK(!tensors.empty(), "concat: no tensors given");
  const Tensor& first = tensors.front();
  const int d = normalize_dim(dim, first.dim(), "concat");
  Shape shape = first.shape();
  shape[d] = 0;
  for (const Tensor& t : tensors) {
    check_compatible(first, t, "concat");
    Shape expected = first.shape();
    expected[d] = t.size(d);
    TKF_CHECK(t.shape() == expected, "concat: shape mismatch along dimension ", d, ", ",
              shape_str(first.shape()), " vs ", shape_str(t.shape()));
    shape[d] += t.size(d);
  }
  Tensor out = empty_like(first, shape);
  std::vector<std::int64_t> starts;
  std::int64_t start = 0;
  for (const Tensor& t : tensors) {
    starts.push_back(start);
    out.narrow(d, start, t.size(d)).copy_(t);
    start += t.size(d);
  }
  std::vector<std::int64_t> lengths;
  for (const Tensor& t : tensors) lengths.push_back(t.size(d));
  return record("concat", tensors, out, [d, starts, lengths](const auto& g) {
    std::vector<Tensor> grads;
    for (std::size_t i = 0; i < starts.size(); ++i)
      grads.push_back(g[0].narrow(d, starts[i], lengths[i]));
    return grads;
  });
}

}  // namespace topkformer::ops
