// Layer normalisation over the last dimension, forward and backward.
#include "kernels/layer_norm.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/parallel.h"

namespace topkformer::kernels::cpu {

void CpuBackend::layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps,
                            const Tensor& y, const Tensor& mean, const Tensor& rstd) {
  const std::int64_t d = check_layer_norm(x, gamma, beta, y);
  dispatch_floating(x.dtype(), "layer_norm", [&](auto zero) {
    using T = decltype(zero);
    const T* in = typed<T>(x);
    const T* g = typed<T>(gamma);
    const T* b = typed<T>(beta);
    T* out = typed_mut<T>(y);
    T* means = typed_mut<T>(mean);
    T* rstds = typed_mut<T>(rstd);
    parallel_for(row_count(x), d * 6, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t r = begin; r < end; ++r) {
        const T* row = in + r * d;
        // Two passes (mean, then variance about it) avoid the cancellation of E[x^2] - E[x]^2.
        double total = 0.0;
        for (std::int64_t j = 0; j < d; ++j) total += row[j];
        const double mu = total / double(d);
        double squares = 0.0;
        for (std::int64_t j = 0; j < d; ++j) squares += (row[j] - mu) * (row[j] - mu);
        const double inv = 1.0 / std::sqrt(squares / double(d) + eps);
        means[r] = static_cast<T>(mu);
        rstds[r] = static_cast<T>(inv);
        for (std::int64_t j = 0; j < d; ++j) {
          out[r * d + j] = static_cast<T>((row[j] - mu) * inv) * g[j] + b[j];
        }
      }
    });
  });
}

void CpuBackend::layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                                     const Tensor& rstd, const Tensor& dy, const Tensor& dx,
                                     const Tensor& dgamma, const Tensor& dbeta) {
  const std::int64_t d = check_layer_norm_backward(x, dy, dx);
  const std::int64_t rows = row_count(x);
  dispatch_floating(x.dtype(), "layer_norm_backward", [&](auto zero) {
    using T = decltype(zero);
    const T* in = typed<T>(x);
    const T* g = typed<T>(gamma);
    const T* means = typed<T>(mean);
    const T* rstds = typed<T>(rstd);
    const T* grad = typed<T>(dy);
    T* dinput = typed_mut<T>(dx);
    // dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * gamma.
    parallel_for(rows, d * 8, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t r = begin; r < end; ++r) {
        const T* row = in + r * d;
        const T* grow = grad + r * d;
        double sum_dxhat = 0.0, sum_dxhat_xhat = 0.0;
        for (std::int64_t j = 0; j < d; ++j) {
          const double xhat = (row[j] - means[r]) * rstds[r];
          const double dxhat = double(grow[j]) * g[j];
          sum_dxhat += dxhat;
          sum_dxhat_xhat += dxhat * xhat;
        }
        const double mean_dxhat = sum_dxhat / double(d);
        const double mean_dxhat_xhat = sum_dxhat_xhat / double(d);
        for (std::int64_t j = 0; j < d; ++j) {
          const double xhat = (row[j] - means[r]) * rstds[r];
          const double dxhat = double(grow[j]) * g[j];
          dinput[r * d + j] =
              static_cast<T>(rstds[r] * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat));
        }
      }
    });
    // Parameter gradients: each thread owns a block of columns and walks all
    // rows in order, so the sums do not depend on the number of threads.
    T* dg = typed_mut<T>(dgamma);
    T* db = typed_mut<T>(dbeta);
    parallel_for(d, rows * 4, [&](std::int64_t begin, std::int64_t end) {
      std::vector<double> sum_g(end - begin, 0.0), sum_b(end - begin, 0.0);
      for (std::int64_t r = 0; r < rows; ++r) {
        const T* row = in + r * d;
        const T* grow = grad + r * d;
        for (std::int64_t j = begin; j < end; ++j) {
          sum_g[j - begin] += double(grow[j]) * (row[j] - means[r]) * rstds[r];
          sum_b[j - begin] += grow[j];
        }
      }
      for (std::int64_t j = begin; j < end; ++j) {
        dg[j] = static_cast<T>(sum_g[j - begin]);
        db[j] = static_cast<T>(sum_b[j - begin]);
      }
    });
  });
}

}  // namespace topkformer::kernels::cpu
