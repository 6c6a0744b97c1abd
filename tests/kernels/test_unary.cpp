// unary against the scalar functions in double, on strided inputs; and
// unary_backward against a central finite difference of those functions.
#include <cmath>
#include <string>

#include "kernels/reference.h"
#include "kernels/unary_reference.h"

namespace topkformer::testing {
namespace {

using kernels::UnaryOp;

class UnaryKernel : public FloatingKernelTest {};

// The floor of 1 makes the bound absolute for small outputs: gelu(-4) is a
// difference of nearly equal terms, exact only to the precision of 1.
TEST_P(UnaryKernel, EveryOpMatchesScalarFunctionOnEveryLayout) {
  for (const UnaryOp op : all_unary_ops) {
    for (const Layout layout : all_layouts()) {
      for (const auto& [rows, cols] :
           {std::pair<std::int64_t, std::int64_t>{1, 1}, {3, 17}, {33, 5}}) {
        const double low = needs_positive_input(op) ? 0.01 : -4.0;
        const Tensor x = strided_input(layout, rows, cols, dtype(), 40, low, 4.0);
        const Tensor out = Tensor::empty({rows, cols}, dtype());
        std::vector<double> want = read_values(x);
        for (double& v : want) v = reference_unary(op, v);
        cpu_kernels().unary(op, x, out);
        expect_all_close(out, want, tol(), 1.0,
                         op_name(op) + " on " + layout_name(layout) + " " + shape_str(x.shape()));
      }
    }
  }
}

// Inputs are kept at least 1e-2 away from 0, where relu has its kink and the
// finite difference would straddle it.
std::vector<double> away_from_zero(std::vector<double> values) {
  for (double& v : values) {
    if (std::abs(v) < 1e-2) v = v < 0 ? -1e-2 : 1e-2;
  }
  return values;
}

double central_difference(UnaryOp op, double x) {
  constexpr double h = 1e-5;
  return (reference_unary(op, x + h) - reference_unary(op, x - h)) / (2 * h);
}

// The finite difference has truncation and cancellation error ~1e-10, so in
// f64 the comparison allows 1e-8 instead of 1e-12.
TEST_P(UnaryKernel, BackwardMatchesCentralFiniteDifference) {
  const double rel_tol = dtype() == DType::f64 ? 1e-8 : tol();
  for (const UnaryOp op : unary_backward_ops) {
    for (const Layout layout : {Layout::contiguous, Layout::transposed, Layout::every_other}) {
      const std::int64_t rows = 5, cols = 17;
      const Tensor x = strided_input(layout, rows, cols, dtype(), 41, -4.0, 4.0);
      write_values(x, away_from_zero(read_values(x)));
      const std::vector<double> xs = read_values(x);
      // tanh's backward takes the forward output y = tanh(x) instead of x.
      Tensor input = x;
      if (op == UnaryOp::tanh) {
        std::vector<double> ys = xs;
        for (double& v : ys) v = std::tanh(v);
        input = tensor_of({rows, cols}, ys, dtype());
      }
      const Tensor dy = random_normal({rows, cols}, dtype(), 42);
      const std::vector<double> dys = read_values(dy);
      std::vector<double> want(xs.size());
      for (std::size_t i = 0; i < xs.size(); ++i) want[i] = dys[i] * central_difference(op, xs[i]);
      const Tensor dx = Tensor::empty({rows, cols}, dtype());
      cpu_kernels().unary_backward(op, input, dy, dx);
      expect_all_close(dx, want, rel_tol, 1.0, op_name(op) + " on " + layout_name(layout));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Floating, UnaryKernel, floating_dtypes(), dtype_test_name);

}  // namespace
}  // namespace topkformer::testing
