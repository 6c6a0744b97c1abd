// Layer normalisation over the last dimension on the GPU, forward and
// backward, following its CPU twin (cpu/layer_norm.cpp) step for step.
// See Note [CUDA layer norm].
#include <cstdint>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduction.cuh"
#include "kernels/dispatch.h"
#include "kernels/layer_norm.h"

// Note [CUDA layer norm]
// As on the CPU: row statistics and the row sums of the backward in double
// (also for f32), the mean first and then the variance about it (no
// E[x^2] - E[x]^2 cancellation), xhat of the backward in the element type.
// Only the order of the sums differs (reduction.cuh), so results agree to
// rounding. dgamma and dbeta are column sums over the rows, deterministic: a
// two-pass reduction through a temporary tensor, no atomics.

namespace topkformer::kernels {

namespace {

using namespace cuda::reduction;

// A group (warp or block, RowGroup) per row: the mean, the variance about it,
// then y, reading the row three times (the later passes mostly from cache).
template <int Size, typename T>
__global__ void __launch_bounds__(block_threads)
    layer_norm_kernel(const T* x, const T* gamma, const T* beta, double eps, std::int64_t rows,
                      std::int64_t d, T* y, T* mean, T* rstd) {
  using Group = RowGroup<Size>;
  __shared__ double scratch[block_warps];
  for (std::int64_t row = Group::first(); row < rows; row += Group::step()) {
    const T* in = x + row * d;
    T* out = y + row * d;
    double total = 0.0;
    for (std::int64_t j = Group::rank(); j < d; j += Size) total += static_cast<double>(in[j]);
    total = Group::template allreduce<SumOp>(total, scratch);
    const double mu = total / static_cast<double>(d);
    double squares = 0.0;
    for (std::int64_t j = Group::rank(); j < d; j += Size) {
      const double centred = static_cast<double>(in[j]) - mu;
      squares += centred * centred;
    }
    squares = Group::template allreduce<SumOp>(squares, scratch);
    const double inv = 1.0 / sqrt(squares / static_cast<double>(d) + eps);
    if (Group::rank() == 0) {
      mean[row] = static_cast<T>(mu);
      rstd[row] = static_cast<T>(inv);
    }
    for (std::int64_t j = Group::rank(); j < d; j += Size) {
      out[j] = static_cast<T>((static_cast<double>(in[j]) - mu) * inv) * gamma[j] + beta[j];
    }
  }
}

// dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * gamma,
// a group per row.
template <int Size, typename T>
__global__ void __launch_bounds__(block_threads)
    layer_norm_dx_kernel(const T* x, const T* gamma, const T* mean, const T* rstd, const T* dy,
                         std::int64_t rows, std::int64_t d, T* dx) {
  using Group = RowGroup<Size>;
  __shared__ Sums<2> scratch[block_warps];
  for (std::int64_t row = Group::first(); row < rows; row += Group::step()) {
    const T* in = x + row * d;
    const T* grad = dy + row * d;
    const T m = mean[row], r = rstd[row];
    Sums<2> sums = SumsOp<2>::identity();
    for (std::int64_t j = Group::rank(); j < d; j += Size) {
      const double xhat = static_cast<T>((in[j] - m) * r);
      const double dxhat = static_cast<double>(grad[j]) * gamma[j];
      sums.v[0] += dxhat;
      sums.v[1] += dxhat * xhat;
    }
    sums = Group::template allreduce<SumsOp<2>>(sums, scratch);
    const double mean_dxhat = sums.v[0] / static_cast<double>(d);
    const double mean_dxhat_xhat = sums.v[1] / static_cast<double>(d);
    for (std::int64_t j = Group::rank(); j < d; j += Size) {
      const double xhat = static_cast<T>((in[j] - m) * r);
      const double dxhat = static_cast<double>(grad[j]) * gamma[j];
      dx[row * d + j] =
          static_cast<T>(static_cast<double>(r) * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat));
    }
  }
}

// Terms of dgamma[j] (dy * xhat, as dy * (x - mean) * rstd) and dbeta[j] (dy)
// for row r: column j of a [rows, d] reduction.
template <typename T>
struct ParameterGradientTerms {
  const T *x, *dy, *mean, *rstd;
  std::int64_t d;
  __device__ std::int64_t base(std::int64_t column) const { return column; }
  __device__ Sums<2> value(std::int64_t column, std::int64_t r) const {
    const std::int64_t e = r * d + column;
    const double grad = static_cast<double>(dy[e]);
    const double centred = static_cast<T>(x[e] - mean[r]);
    return {{grad * centred * static_cast<double>(rstd[r]), grad}};
  }
};

template <typename T>
struct StoreParameterGradients {
  T *dgamma, *dbeta;
  __device__ void operator()(std::int64_t column, std::int64_t, const Sums<2>& sums) const {
    dgamma[column] = static_cast<T>(sums.v[0]);
    dbeta[column] = static_cast<T>(sums.v[1]);
  }
};

bool short_rows(std::int64_t d) {
  return d <= warp_row_limit;
}

}  // namespace

void CudaBackend::layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps,
                             const Tensor& y, const Tensor& mean, const Tensor& rstd) {
  const std::int64_t d = check_layer_norm(x, gamma, beta, y);
  const std::int64_t rows = row_count(x);
  // The kernel writes y, mean and rstd as flat arrays.
  TKF_CHECK(mean.is_contiguous() && rstd.is_contiguous() && y.numel() == x.numel() &&
                mean.numel() == rows && rstd.numel() == rows,
            "layer_norm: input ", shape_str(x.shape()), " with y ", shape_str(y.shape()),
            " needs contiguous mean and rstd of ", rows, " elements, got ", shape_str(mean.shape()),
            " and ", shape_str(rstd.shape()));
  for (const Tensor* t : {&gamma, &beta, &y, &mean, &rstd}) check_same_dtype(x, *t, "layer_norm");
  const cuda::Launch launch(x, {&gamma, &beta, &y, &mean, &rstd}, "layer_norm");
  if (rows == 0) return;
  dispatch_floating(x.dtype(), "layer_norm", [&](auto zero) {
    using T = decltype(zero);
    const T* in = typed<T>(x);
    const T* g = typed<T>(gamma);
    const T* b = typed<T>(beta);
    T* out = typed_mut<T>(y);
    T* means = typed_mut<T>(mean);
    T* rstds = typed_mut<T>(rstd);
    if (short_rows(d)) {
      layer_norm_kernel<warp_size, T>
          <<<row_grid<warp_size>(rows), block_threads, 0, launch.stream()>>>(in, g, b, eps, rows, d,
                                                                             out, means, rstds);
    } else {
      layer_norm_kernel<block_threads, T>
          <<<row_grid<block_threads>(rows), block_threads, 0, launch.stream()>>>(
              in, g, b, eps, rows, d, out, means, rstds);
    }
    TKF_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                                      const Tensor& rstd, const Tensor& dy, const Tensor& dx,
                                      const Tensor& dgamma, const Tensor& dbeta) {
  const std::int64_t d = check_layer_norm_backward(x, dy, dx);
  const std::int64_t rows = row_count(x);
  // The kernels read and write every operand as a flat array.
  TKF_CHECK(gamma.is_contiguous() && mean.is_contiguous() && rstd.is_contiguous() &&
                dgamma.is_contiguous() && dbeta.is_contiguous() && gamma.numel() == d &&
                dgamma.numel() == d && dbeta.numel() == d && mean.numel() == rows &&
                rstd.numel() == rows && dy.numel() == x.numel() && dx.numel() == x.numel(),
            "layer_norm_backward: input ", shape_str(x.shape()), " with gamma ",
            shape_str(gamma.shape()), ", mean ", shape_str(mean.shape()), ", rstd ",
            shape_str(rstd.shape()), ", dy ", shape_str(dy.shape()), ", dx ", shape_str(dx.shape()),
            ", dgamma ", shape_str(dgamma.shape()), ", dbeta ", shape_str(dbeta.shape()),
            " (contiguous, one row statistic per row, one parameter "
            "gradient per column)");
  for (const Tensor* t : {&gamma, &mean, &rstd, &dy, &dx, &dgamma, &dbeta}) {
    check_same_dtype(x, *t, "layer_norm_backward");
  }
  const cuda::Launch launch(x, {&gamma, &mean, &rstd, &dy, &dx, &dgamma, &dbeta},
                            "layer_norm_backward");
  dispatch_floating(x.dtype(), "layer_norm_backward", [&](auto zero) {
    using T = decltype(zero);
    const T* in = typed<T>(x);
    const T* g = typed<T>(gamma);
    const T* means = typed<T>(mean);
    const T* rstds = typed<T>(rstd);
    const T* grad = typed<T>(dy);
    if (rows > 0) {
      if (short_rows(d)) {
        layer_norm_dx_kernel<warp_size, T>
            <<<row_grid<warp_size>(rows), block_threads, 0, launch.stream()>>>(
                in, g, means, rstds, grad, rows, d, typed_mut<T>(dx));
      } else {
        layer_norm_dx_kernel<block_threads, T>
            <<<row_grid<block_threads>(rows), block_threads, 0, launch.stream()>>>(
                in, g, means, rstds, grad, rows, d, typed_mut<T>(dx));
      }
      TKF_CUDA_CHECK_LAUNCH();
    }
    // Column sums over all rows (0 when there are none).
    column_sums<2>(ParameterGradientTerms<T>{in, grad, means, rstds, d},
                   StoreParameterGradients<T>{typed_mut<T>(dgamma), typed_mut<T>(dbeta)}, d, rows,
                   x.device(), launch.stream());
  });
}

}  // namespace topkformer::kernels
