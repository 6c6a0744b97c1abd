#include "topkformer/ops.h"

#include "op_support.h"

namespace topkformer::ops {

using autograd::record;
using kernels::BinaryOp;
using kernels::UnaryOp;

namespace {

Tensor binary_kernel(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  check_floating(a, name);
  check_compatible(a, b, name);
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = empty_like(a, shape);
  backend_of(a).binary(op, a.expand(shape), b.expand(shape), out);
  return out;
}

Tensor unary_kernel(UnaryOp op, const Tensor& x, const char* name) {
  check_floating(x, name);
  Tensor out = empty_like(x);
  backend_of(x).unary(op, x, out);
  return out;
}

Tensor unary_derivative_kernel(UnaryOp op, const Tensor& x, const Tensor& dy) {
  Tensor dx = empty_like(x);
  backend_of(x).unary_backward(op, x, dy, dx);
  return dx;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_kernel(BinaryOp::add, a, b, "add");
  return record("add", {a, b}, out, [sa = a.shape(), sb = b.shape()](const auto& g) {
    return std::vector<Tensor>{sum_to_shape(g[0], sa), sum_to_shape(g[0], sb)};
  });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_kernel(BinaryOp::sub, a, b, "sub");
  return record("sub", {a, b}, out, [sa = a.shape(), sb = b.shape()](const auto& g) {
    return std::vector<Tensor>{sum_to_shape(g[0], sa), sum_to_shape(neg(g[0]), sb)};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_kernel(BinaryOp::mul, a, b, "mul");
  return record("mul", {a, b}, out, [a, b](const auto& g) {
    return std::vector<Tensor>{
        a.requires_grad() ? sum_to_shape(mul(g[0], b), a.shape()) : Tensor(),
        b.requires_grad() ? sum_to_shape(mul(g[0], a), b.shape()) : Tensor()};
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_kernel(BinaryOp::div, a, b, "div");
  return record("div", {a, b}, out, [a, b](const auto& g) {
    Tensor da, db;
    if (a.requires_grad()) da = sum_to_shape(div(g[0], b), a.shape());
    // d(a/b)/db = -a / b^2
    if (b.requires_grad()) db = sum_to_shape(neg(div(mul(g[0], a), mul(b, b))), b.shape());
    return std::vector<Tensor>{da, db};
  });
}

Tensor scale(const Tensor& x, double alpha) {
  check_floating(x, "scale");
  Tensor out = empty_like(x);
  backend_of(x).affine(x, alpha, 0.0, out);
  return record("scale", {x}, out,
                [alpha](const auto& g) { return std::vector<Tensor>{scale(g[0], alpha)}; });
}

Tensor add_scalar(const Tensor& x, double value) {
  check_floating(x, "add_scalar");
  Tensor out = empty_like(x);
  backend_of(x).affine(x, 1.0, value, out);
  return record("add_scalar", {x}, out, [](const auto& g) { return std::vector<Tensor>{g[0]}; });
}

Tensor neg(const Tensor& x) {
  Tensor out = unary_kernel(UnaryOp::neg, x, "neg");
  return record("neg", {x}, out, [](const auto& g) { return std::vector<Tensor>{neg(g[0])}; });
}

Tensor exp(const Tensor& x) {
  Tensor out = unary_kernel(UnaryOp::exp, x, "exp");
  // Saves the output (d exp = exp), detached so the node does not refer to itself.
  return record("exp", {x}, out,
                [y = out.detach()](const auto& g) { return std::vector<Tensor>{mul(g[0], y)}; });
}

Tensor log(const Tensor& x) {
  Tensor out = unary_kernel(UnaryOp::log, x, "log");
  return record("log", {x}, out, [x](const auto& g) { return std::vector<Tensor>{div(g[0], x)}; });
}

Tensor sqrt(const Tensor& x) {
  Tensor out = unary_kernel(UnaryOp::sqrt, x, "sqrt");
  return record("sqrt", {x}, out, [y = out.detach()](const auto& g) {
    return std::vector<Tensor>{div(g[0], scale(y, 2.0))};
  });
}

Tensor tanh(const Tensor& x) {
  Tensor out = unary_kernel(UnaryOp::tanh, x, "tanh");
  return record("tanh", {x}, out, [y = out.detach()](const auto& g) {
    return std::vector<Tensor>{unary_derivative_kernel(UnaryOp::tanh, y, g[0])};
  });
}

Tensor relu(const Tensor& x) {
  Tensor out = unary_kernel(UnaryOp::relu, x, "relu");
  return record("relu", {x}, out, [x](const auto& g) {
    return std::vector<Tensor>{unary_derivative_kernel(UnaryOp::relu, x, g[0])};
  });
}

Tensor gelu(const Tensor& x, GeluApproximation approximation) {
  const UnaryOp op =
      approximation == GeluApproximation::tanh ? UnaryOp::gelu_tanh : UnaryOp::gelu_erf;
  Tensor out = unary_kernel(op, x, "gelu");
  return record("gelu", {x}, out, [x, op](const auto& g) {
    return std::vector<Tensor>{unary_derivative_kernel(op, x, g[0])};
  });
}

}  // namespace topkformer::ops
