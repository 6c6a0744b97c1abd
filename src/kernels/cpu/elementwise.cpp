// Copies (with dtype conversion), fills, arange and the elementwise kernels on
// strided operands of one shape (broadcasting is done by the op layer with
// stride-0 views).
#include "kernels/elementwise.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/parallel.h"

namespace topkformer::kernels::cpu {

namespace {

template <typename T>
T apply_unary(UnaryOp op, T x) {
  switch (op) {
    case UnaryOp::neg:
      return -x;
    case UnaryOp::exp:
      return std::exp(x);
    case UnaryOp::log:
      return std::log(x);
    case UnaryOp::tanh:
      return std::tanh(x);
    case UnaryOp::relu:
      return x > T(0) ? x : T(0);
    case UnaryOp::gelu_tanh:
      return gelu_tanh(x);
    case UnaryOp::gelu_erf:
      return gelu_erf(x);
    case UnaryOp::sqrt:
      return std::sqrt(x);
  }
  return x;
}

// d op(x) / dx; for tanh the argument is the forward output y.
template <typename T>
T unary_derivative(UnaryOp op, T x) {
  switch (op) {
    case UnaryOp::relu:
      return x > T(0) ? T(1) : T(0);
    case UnaryOp::gelu_tanh:
      return gelu_tanh_derivative(x);
    case UnaryOp::gelu_erf:
      return gelu_erf_derivative(x);
    case UnaryOp::tanh:
      return T(1) - x * x;
    default:
      break;
  }
  throw Error("unary_backward: no derivative kernel for this op; differentiate it with ops");
}

// out[i] = f(in0[i], in1[i], ...) over same-shaped strided operands, where the
// operation is chosen once per call (not per element) by the caller's lambda.
template <typename T, int Inputs, typename Function>
void map_elements(const std::array<const Tensor*, Inputs>& inputs, const Tensor& out,
                  Function function) {
  std::array<const Tensor*, Inputs + 1> operands;
  for (int k = 0; k < Inputs; ++k) {
    check_elementwise_input(*inputs[k], out);
    operands[k] = inputs[k];
  }
  operands[Inputs] = &out;
  StridedRows<Inputs + 1> loop(out.shape(), operands);
  std::array<const T*, Inputs> in_base;
  for (int k = 0; k < Inputs; ++k) in_base[k] = storage_base<T>(*inputs[k]);
  T* out_base = storage_base<T>(out);
  parallel_for(loop.rows(), loop.inner() * 4, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t row = begin; row < end; ++row) {
      std::array<const T*, Inputs> in;
      for (int k = 0; k < Inputs; ++k) in[k] = in_base[k] + loop.row_offset(k, row);
      T* result = out_base + loop.row_offset(Inputs, row);
      const std::int64_t out_stride = loop.inner_stride(Inputs);
      if constexpr (Inputs == 1) {
        const std::int64_t s0 = loop.inner_stride(0);
        for (std::int64_t i = 0; i < loop.inner(); ++i)
          result[i * out_stride] = function(in[0][i * s0]);
      } else {
        const std::int64_t s0 = loop.inner_stride(0), s1 = loop.inner_stride(1);
        for (std::int64_t i = 0; i < loop.inner(); ++i)
          result[i * out_stride] = function(in[0][i * s0], in[1][i * s1]);
      }
    }
  });
}

}  // namespace

void CpuBackend::copy(const Tensor& src, const Tensor& dst) {
  TKF_CHECK(src.device().is_cpu() && dst.device().is_cpu(), "copy: no path from ",
            src.device().str(), " to ", dst.device().str(), " in this build");
  StridedRows<2> loop(dst.shape(), {&src, &dst});
  visit_dtype(src.dtype(), [&](auto src_zero) {
    using From = decltype(src_zero);
    visit_dtype(dst.dtype(), [&](auto dst_zero) {
      using To = decltype(dst_zero);
      const From* from = storage_base<From>(src);
      To* to = storage_base<To>(dst);
      const std::int64_t s0 = loop.inner_stride(0), s1 = loop.inner_stride(1);
      parallel_for(loop.rows(), loop.inner(), [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t row = begin; row < end; ++row) {
          const From* in = from + loop.row_offset(0, row);
          To* out = to + loop.row_offset(1, row);
          for (std::int64_t i = 0; i < loop.inner(); ++i) out[i * s1] = static_cast<To>(in[i * s0]);
        }
      });
    });
  });
}

void CpuBackend::fill(const Tensor& dst, double value) {
  StridedRows<1> loop(dst.shape(), {&dst});
  visit_dtype(dst.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* base = storage_base<T>(dst);
    const T filler = static_cast<T>(value);
    const std::int64_t stride = loop.inner_stride(0);
    parallel_for(loop.rows(), loop.inner(), [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t row = begin; row < end; ++row) {
        T* out = base + loop.row_offset(0, row);
        for (std::int64_t i = 0; i < loop.inner(); ++i) out[i * stride] = filler;
      }
    });
  });
}

void CpuBackend::arange(const Tensor& dst, double start, double step) {
  visit_dtype(dst.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* out = typed_mut<T>(dst);
    for (std::int64_t i = 0; i < dst.numel(); ++i)
      out[i] = static_cast<T>(start + double(i) * step);
  });
}

void CpuBackend::unary(UnaryOp op, const Tensor& x, const Tensor& out) {
  dispatch_floating(out.dtype(), "unary", [&](auto zero) {
    using T = decltype(zero);
    switch (op) {  // one loop per op so that the inner loop has no branch
      case UnaryOp::neg:
        return map_elements<T, 1>({&x}, out, [](T v) { return -v; });
      case UnaryOp::relu:
        return map_elements<T, 1>({&x}, out, [](T v) { return v > T(0) ? v : T(0); });
      default:
        return map_elements<T, 1>({&x}, out, [op](T v) { return apply_unary(op, v); });
    }
  });
}

void CpuBackend::unary_backward(UnaryOp op, const Tensor& x, const Tensor& dy, const Tensor& dx) {
  dispatch_floating(dx.dtype(), "unary_backward", [&](auto zero) {
    using T = decltype(zero);
    check_unary_backward_op(op);
    map_elements<T, 2>({&x, &dy}, dx, [op](T v, T g) { return g * unary_derivative(op, v); });
  });
}

void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  dispatch_floating(out.dtype(), "binary", [&](auto zero) {
    using T = decltype(zero);
    switch (op) {
      case BinaryOp::add:
        return map_elements<T, 2>({&a, &b}, out, [](T u, T v) { return u + v; });
      case BinaryOp::sub:
        return map_elements<T, 2>({&a, &b}, out, [](T u, T v) { return u - v; });
      case BinaryOp::mul:
        return map_elements<T, 2>({&a, &b}, out, [](T u, T v) { return u * v; });
      case BinaryOp::div:
        return map_elements<T, 2>({&a, &b}, out, [](T u, T v) { return u / v; });
    }
  });
}

void CpuBackend::affine(const Tensor& x, double alpha, double beta, const Tensor& out) {
  dispatch_floating(out.dtype(), "affine", [&](auto zero) {
    using T = decltype(zero);
    const T scale = static_cast<T>(alpha), shift = static_cast<T>(beta);
    map_elements<T, 1>({&x}, out, [scale, shift](T v) { return scale * v + shift; });
  });
}

}  // namespace topkformer::kernels::cpu
