// Elementwise kernels (unary and its backward, binary, affine), fill, arange
// and copy. Operands are same-shaped views with any strides (broadcasting is
// done by the op layer with stride-0 views), read in place: the kernels walk
// their coalesced layout (cuda/strided_layout.h) instead of copying them.
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "cuda/copy.h"
#include "cuda/strided_layout.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/launch.h"
#include "kernels/dispatch.h"
#include "kernels/elementwise.h"

namespace topkformer::kernels {

namespace {

// ---- the scalar functions (the formulas of the CPU's elementwise.cpp) ----

template <UnaryOp Op>
struct Unary {
  template <typename T>
  __device__ T operator()(T x) const {
    if constexpr (Op == UnaryOp::neg)
      return -x;
    else if constexpr (Op == UnaryOp::exp)
      return std::exp(x);
    else if constexpr (Op == UnaryOp::log)
      return std::log(x);
    else if constexpr (Op == UnaryOp::tanh)
      return std::tanh(x);
    else if constexpr (Op == UnaryOp::relu)
      return x > T(0) ? x : T(0);
    else if constexpr (Op == UnaryOp::gelu_tanh)
      return gelu_tanh(x);
    else if constexpr (Op == UnaryOp::gelu_erf)
      return gelu_erf(x);
    else if constexpr (Op == UnaryOp::sqrt)
      return std::sqrt(x);
  }
};

// dy * f'(x); for tanh, x is the forward output y.
template <UnaryOp Op>
struct UnaryBackward {
  template <typename T>
  __device__ T operator()(T x, T dy) const {
    if constexpr (Op == UnaryOp::relu)
      return dy * (x > T(0) ? T(1) : T(0));
    else if constexpr (Op == UnaryOp::gelu_tanh)
      return dy * gelu_tanh_derivative(x);
    else if constexpr (Op == UnaryOp::gelu_erf)
      return dy * gelu_erf_derivative(x);
    else if constexpr (Op == UnaryOp::tanh)
      return dy * (T(1) - x * x);
  }
};

template <BinaryOp Op>
struct Binary {
  template <typename T>
  __device__ T operator()(T a, T b) const {
    if constexpr (Op == BinaryOp::add)
      return a + b;
    else if constexpr (Op == BinaryOp::sub)
      return a - b;
    else if constexpr (Op == BinaryOp::mul)
      return a * b;
    else if constexpr (Op == BinaryOp::div)
      return a / b;
  }
};

template <typename T>
struct Affine {
  T scale, shift;
  __device__ T operator()(T v) const { return scale * v + shift; }
};

template <typename T>
struct Constant {
  T value;
  __device__ T operator()() const { return value; }
};

// Calls run(functor) with the functor of a runtime op, so that each op gets
// its own kernel without a branch per element.
template <typename Run>
void with_unary(UnaryOp op, Run&& run) {
  switch (op) {
    case UnaryOp::neg:
      return run(Unary<UnaryOp::neg>{});
    case UnaryOp::exp:
      return run(Unary<UnaryOp::exp>{});
    case UnaryOp::log:
      return run(Unary<UnaryOp::log>{});
    case UnaryOp::tanh:
      return run(Unary<UnaryOp::tanh>{});
    case UnaryOp::relu:
      return run(Unary<UnaryOp::relu>{});
    case UnaryOp::gelu_tanh:
      return run(Unary<UnaryOp::gelu_tanh>{});
    case UnaryOp::gelu_erf:
      return run(Unary<UnaryOp::gelu_erf>{});
    case UnaryOp::sqrt:
      return run(Unary<UnaryOp::sqrt>{});
  }
}

// Only the ops check_unary_backward_op accepts.
template <typename Run>
void with_unary_backward(UnaryOp op, Run&& run) {
  switch (op) {
    case UnaryOp::relu:
      return run(UnaryBackward<UnaryOp::relu>{});
    case UnaryOp::gelu_tanh:
      return run(UnaryBackward<UnaryOp::gelu_tanh>{});
    case UnaryOp::gelu_erf:
      return run(UnaryBackward<UnaryOp::gelu_erf>{});
    case UnaryOp::tanh:
      return run(UnaryBackward<UnaryOp::tanh>{});
    default:
      return;
  }
}

template <typename Run>
void with_binary(BinaryOp op, Run&& run) {
  switch (op) {
    case BinaryOp::add:
      return run(Binary<BinaryOp::add>{});
    case BinaryOp::sub:
      return run(Binary<BinaryOp::sub>{});
    case BinaryOp::mul:
      return run(Binary<BinaryOp::mul>{});
    case BinaryOp::div:
      return run(Binary<BinaryOp::div>{});
  }
}

// ---- the kernels ----

// out = function(inputs...) at one element, given its offset in every view
// (the inputs', then out's): the body of both kernels below.
template <typename T, int Inputs, typename Function>
struct MapElement {
  const T* in[Inputs > 0 ? Inputs : 1];
  T* out;
  Function function;

  template <typename Index>
  __device__ void operator()(const Index (&at)[Inputs + 1]) const {
    if constexpr (Inputs == 0)
      out[at[0]] = function();
    else if constexpr (Inputs == 1)
      out[at[1]] = function(in[0][at[0]]);
    else if constexpr (Inputs == 2)
      out[at[2]] = function(in[0][at[0]], in[1][at[1]]);
  }
};

// Every view dense: element i is at offset i in each, no index arithmetic.
template <std::size_t Views, typename Body>
__global__ void dense_map_kernel(std::int64_t count, Body body) {
  const std::int64_t step = std::int64_t(gridDim.x) * blockDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += step) {
    std::int64_t at[Views];
    for (std::size_t v = 0; v < Views; ++v) at[v] = i;
    body(at);
  }
}

// Any strides: each element's offsets from its row-major index. Consecutive
// threads take consecutive elements, so the (contiguous) output is written
// coalesced whatever the inputs' layout.
template <std::size_t Views, typename Index, typename Body>
__global__ void strided_map_kernel(cuda::StridedOffsets<Views, Index> layout, Index count,
                                   Body body) {
  const Index step = Index(gridDim.x) * Index(blockDim.x);
  for (Index i = Index(blockIdx.x) * Index(blockDim.x) + threadIdx.x; i < count; i += step) {
    Index at[Views];
    layout.offsets_of(i, at);
    body(at);
  }
}

// Runs make_body(views)'s body at every element of the same-shaped views (the
// written one last) on `stream`.
template <std::size_t Views, typename MakeBody>
void launch_map(const std::array<Tensor, Views>& views, const MakeBody& make_body,
                cudaStream_t stream) {
  const Tensor& written = views[Views - 1];
  const std::int64_t count = written.numel();
  if (count == 0) return;
  std::array<const Tensor*, Views> pointers;
  for (std::size_t v = 0; v < Views; ++v) pointers[v] = &views[v];
  const cuda::CoalescedDims<Views> dims = cuda::coalesce<Views>(written.shape(), pointers);
  if (dims.rank() > cuda::max_strided_dims) {
    // More dimensions that do not merge than one launch takes: one launch
    // per slice along the first dimension (each has one dimension fewer).
    for (std::int64_t i = 0; i < written.size(0); ++i) {
      std::array<Tensor, Views> slices;
      for (std::size_t v = 0; v < Views; ++v) slices[v] = views[v].select(0, i);
      launch_map(slices, make_body, stream);
    }
    return;
  }
  const auto body = make_body(views);
  const unsigned blocks = cuda::grid_for(count);
  constexpr int threads = cuda::threads_per_block;
  if (dims.dense()) {
    dense_map_kernel<Views><<<blocks, threads, 0, stream>>>(count, body);
  } else if (cuda::fits_32_bits(dims, count)) {
    strided_map_kernel<<<blocks, threads, 0, stream>>>(cuda::strided_offsets<std::uint32_t>(dims),
                                                       static_cast<std::uint32_t>(count), body);
  } else {
    strided_map_kernel<<<blocks, threads, 0, stream>>>(cuda::strided_offsets<std::int64_t>(dims),
                                                       count, body);
  }
  TKF_CUDA_CHECK_LAUNCH();
}

// out = function(x) or function(a, b), elementwise, for T the dtype of out.
template <typename T, typename Function>
void map_unary(const Tensor& x, const Tensor& out, Function function, cudaStream_t stream) {
  launch_map<2>(
      {x, out},
      [&](const std::array<Tensor, 2>& views) {
        return MapElement<T, 1, Function>{{typed<T>(views[0])}, typed_mut<T>(views[1]), function};
      },
      stream);
}

template <typename T, typename Function>
void map_binary(const Tensor& a, const Tensor& b, const Tensor& out, Function function,
                cudaStream_t stream) {
  launch_map<3>(
      {a, b, out},
      [&](const std::array<Tensor, 3>& views) {
        return MapElement<T, 2, Function>{
            {typed<T>(views[0]), typed<T>(views[1])}, typed_mut<T>(views[2]), function};
      },
      stream);
}

template <typename T>
__global__ void arange_kernel(T* out, std::int64_t count, double start, double step) {
  const std::int64_t stride = std::int64_t(gridDim.x) * blockDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride) {
    // start + i * step with one rounding, as the CPU build computes it (GCC
    // contracts it into a fused multiply-add on x86-64-v3).
    out[i] = static_cast<T>(fma(double(i), step, start));
  }
}

}  // namespace

void CudaBackend::copy(const Tensor& src, const Tensor& dst) {
  cuda::copy(src, dst);
}

void CudaBackend::fill(const Tensor& dst, double value) {
  const cuda::Launch launch(dst, {}, "fill");
  visit_dtype(dst.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const Constant<T> constant{static_cast<T>(value)};
    launch_map<1>(
        {dst},
        [&](const std::array<Tensor, 1>& views) {
          return MapElement<T, 0, Constant<T>>{{nullptr}, typed_mut<T>(views[0]), constant};
        },
        launch.stream());
  });
}

void CudaBackend::arange(const Tensor& dst, double start, double step) {
  TKF_CHECK(dst.is_contiguous(), "arange: destination must be contiguous");
  const cuda::Launch launch(dst, {}, "arange");
  const std::int64_t count = dst.numel();
  if (count == 0) return;
  visit_dtype(dst.dtype(), [&](auto zero) {
    using T = decltype(zero);
    arange_kernel<<<cuda::grid_for(count), cuda::threads_per_block, 0, launch.stream()>>>(
        typed_mut<T>(dst), count, start, step);
    TKF_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::unary(UnaryOp op, const Tensor& x, const Tensor& out) {
  dispatch_floating(out.dtype(), "unary", [&](auto zero) {
    using T = decltype(zero);
    check_elementwise_input(x, out);
    const cuda::Launch launch(out, {&x}, "unary");
    with_unary(op, [&](auto function) { map_unary<T>(x, out, function, launch.stream()); });
  });
}

void CudaBackend::unary_backward(UnaryOp op, const Tensor& x, const Tensor& dy, const Tensor& dx) {
  dispatch_floating(dx.dtype(), "unary_backward", [&](auto zero) {
    using T = decltype(zero);
    check_unary_backward_op(op);
    check_elementwise_input(x, dx);
    check_elementwise_input(dy, dx);
    const cuda::Launch launch(dx, {&x, &dy}, "unary_backward");
    with_unary_backward(
        op, [&](auto function) { map_binary<T>(x, dy, dx, function, launch.stream()); });
  });
}

void CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  dispatch_floating(out.dtype(), "binary", [&](auto zero) {
    using T = decltype(zero);
    check_elementwise_input(a, out);
    check_elementwise_input(b, out);
    const cuda::Launch launch(out, {&a, &b}, "binary");
    with_binary(op, [&](auto function) { map_binary<T>(a, b, out, function, launch.stream()); });
  });
}

void CudaBackend::affine(const Tensor& x, double alpha, double beta, const Tensor& out) {
  dispatch_floating(out.dtype(), "affine", [&](auto zero) {
    using T = decltype(zero);
    check_elementwise_input(x, out);
    const cuda::Launch launch(out, {&x}, "affine");
    map_unary<T>(x, out, Affine<T>{static_cast<T>(alpha), static_cast<T>(beta)}, launch.stream());
  });
}

}  // namespace topkformer::kernels
