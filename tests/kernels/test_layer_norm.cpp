// layer_norm forward (y, mean, rstd) and backward (dx, dgamma, dbeta) against
// loops in double. The reference dx applies the full Jacobian of the row
// normalisation, a different derivation from the kernel's closed form.
#include <string>

#include "kernels/reference.h"

namespace topkformer::testing {
namespace {

constexpr double eps = 1e-5;

struct RowStats {
  std::vector<double> mean, rstd;
};

RowStats reference_stats(const std::vector<double>& x, std::int64_t d) {
  RowStats stats;
  for (std::size_t r = 0; r < x.size() / d; ++r) {
    double total = 0.0, squares = 0.0;
    for (std::int64_t j = 0; j < d; ++j) total += x[r * d + j];
    const double mu = total / double(d);
    for (std::int64_t j = 0; j < d; ++j) squares += (x[r * d + j] - mu) * (x[r * d + j] - mu);
    stats.mean.push_back(mu);
    stats.rstd.push_back(1.0 / std::sqrt(squares / double(d) + eps));
  }
  return stats;
}

struct Problem {
  Tensor x, gamma, beta;
  std::int64_t d;
};

// Rows are shifted by `offset` to check that the variance does not cancel.
Problem make_problem(const Shape& shape, DType dtype, double offset) {
  const std::int64_t d = shape.back();
  Tensor x = random_normal(shape, dtype, 80);
  std::vector<double> xv = read_values(x);
  for (double& v : xv) v += offset;
  write_values(x, xv);
  return {x, random_normal({d}, dtype, 81), random_normal({d}, dtype, 82), d};
}

const std::pair<Shape, double> shapes_and_offsets[] = {
    {{1, 1}, 0.0}, {{3, 17}, 0.0}, {{2, 3, 33}, 0.0}, {{5, 33}, 50.0}};

class LayerNormKernel : public FloatingKernelTest {};

TEST_P(LayerNormKernel, ForwardMatchesReference) {
  for (const auto& [shape, offset] : shapes_and_offsets) {
    const Problem p = make_problem(shape, dtype(), offset);
    const std::int64_t rows = p.x.numel() / p.d;
    const Tensor y = Tensor::empty(shape, dtype());
    const Tensor mean = Tensor::empty({rows}, dtype()), rstd = Tensor::empty({rows}, dtype());
    cpu_kernels().layer_norm(p.x, p.gamma, p.beta, eps, y, mean, rstd);

    const std::vector<double> xv = read_values(p.x), g = read_values(p.gamma),
                              b = read_values(p.beta);
    const RowStats stats = reference_stats(xv, p.d);
    std::vector<double> want(xv.size());
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t j = 0; j < p.d; ++j) {
        const std::size_t e = r * p.d + j;
        want[e] = (xv[e] - stats.mean[r]) * stats.rstd[r] * g[j] + b[j];
      }
    }
    const std::string what = shape_str(shape) + " offset " + std::to_string(offset);
    expect_all_close(y, want, tol(), 1.0, what + " y");
    expect_all_close(mean, stats.mean, tol(), 1.0, what + " mean");
    expect_all_close(rstd, stats.rstd, tol(), 1.0, what + " rstd");
  }
}

// The backward is fed the kernel's own mean and rstd, as in training.
TEST_P(LayerNormKernel, BackwardMatchesJacobianReference) {
  for (const auto& [shape, offset] : shapes_and_offsets) {
    const Problem p = make_problem(shape, dtype(), offset);
    const std::int64_t rows = p.x.numel() / p.d, d = p.d;
    const Tensor y = Tensor::empty(shape, dtype());
    const Tensor mean = Tensor::empty({rows}, dtype()), rstd = Tensor::empty({rows}, dtype());
    cpu_kernels().layer_norm(p.x, p.gamma, p.beta, eps, y, mean, rstd);
    const Tensor dy = random_normal(shape, dtype(), 83);
    const Tensor dx = Tensor::empty(shape, dtype());
    const Tensor dgamma = Tensor::empty({d}, dtype()), dbeta = Tensor::empty({d}, dtype());
    cpu_kernels().layer_norm_backward(p.x, p.gamma, mean, rstd, dy, dx, dgamma, dbeta);

    const std::vector<double> xv = read_values(p.x), g = read_values(p.gamma),
                              dyv = read_values(dy);
    const RowStats stats = reference_stats(xv, d);
    std::vector<double> want_dx(xv.size(), 0.0), want_dgamma(d, 0.0), want_dbeta(d, 0.0);
    for (std::int64_t r = 0; r < rows; ++r) {
      std::vector<double> xhat(d);
      for (std::int64_t j = 0; j < d; ++j)
        xhat[j] = (xv[r * d + j] - stats.mean[r]) * stats.rstd[r];
      // dy_j/dx_k = gamma_j rstd (delta_jk - 1/d - xhat_j xhat_k / d)
      for (std::int64_t k = 0; k < d; ++k) {
        double total = 0.0;
        for (std::int64_t j = 0; j < d; ++j) {
          const double jacobian =
              g[j] * stats.rstd[r] *
              ((j == k ? 1.0 : 0.0) - 1.0 / double(d) - xhat[j] * xhat[k] / double(d));
          total += dyv[r * d + j] * jacobian;
        }
        want_dx[r * d + k] = total;
      }
      for (std::int64_t j = 0; j < d; ++j) {
        want_dgamma[j] += dyv[r * d + j] * xhat[j];
        want_dbeta[j] += dyv[r * d + j];
      }
    }
    const std::string what = shape_str(shape) + " offset " + std::to_string(offset);
    expect_all_close(dx, want_dx, tol(), 1.0, what + " dx");
    expect_all_close(dgamma, want_dgamma, tol(), 1.0, what + " dgamma");
    expect_all_close(dbeta, want_dbeta, tol(), 1.0, what + " dbeta");
  }
}

INSTANTIATE_TEST_SUITE_P(Floating, LayerNormKernel, floating_dtypes(), dtype_test_name);

}  // namespace
}  // namespace topkformer::testing
