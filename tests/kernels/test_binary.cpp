// binary and affine against scalar arithmetic in double, on every pair of
// input layouts: transposed, sliced and stride-0 (broadcast) views.
#include <string>

#include "kernels/binary_reference.h"
#include "kernels/reference.h"

namespace topkformer::testing {
namespace {

using kernels::BinaryOp;

class BinaryKernel : public FloatingKernelTest {};

// Each result is one correctly rounded operation on the inputs, so the plain
// relative tolerance holds (the floor only matters for sums that cancel).
TEST_P(BinaryKernel, EveryOpMatchesScalarArithmeticOnEveryLayoutPair) {
  const std::int64_t rows = 3, cols = 17;
  for (const BinaryOp op : all_binary_ops) {
    for (const Layout layout_a : all_layouts()) {
      for (const Layout layout_b : all_layouts()) {
        const Tensor a = strided_input(layout_a, rows, cols, dtype(), 50, -3.0, 3.0);
        // b stays away from 0 so that division is well conditioned.
        const Tensor b = strided_input(layout_b, rows, cols, dtype(), 51, 0.5, 2.0);
        const std::vector<double> av = read_values(a), bv = read_values(b);
        std::vector<double> want(av.size());
        for (std::size_t i = 0; i < av.size(); ++i) want[i] = reference_binary(op, av[i], bv[i]);
        const Tensor out = Tensor::empty({rows, cols}, dtype());
        cpu_kernels().binary(op, a, b, out);
        expect_all_close(
            out, want, tol(), 1.0,
            op_name(op) + "(" + layout_name(layout_a) + ", " + layout_name(layout_b) + ")");
      }
    }
  }
}

// A rank-3 permuted view against a stride-0 expanded one: dimensions that
// cannot be coalesced.
TEST_P(BinaryKernel, Rank3PermutedAndExpandedOperands) {
  const Tensor a = random_normal({5, 3, 4}, dtype(), 52).permute({1, 2, 0});  // [3, 4, 5]
  const Tensor b = random_normal({3, 1, 5}, dtype(), 53).expand({3, 4, 5});
  const std::vector<double> av = read_values(a), bv = read_values(b);
  std::vector<double> want(av.size());
  for (std::size_t i = 0; i < av.size(); ++i) want[i] = av[i] * bv[i];
  const Tensor out = Tensor::empty({3, 4, 5}, dtype());
  cpu_kernels().binary(BinaryOp::mul, a, b, out);
  expect_all_close(out, want, tol());
}

TEST_P(BinaryKernel, AffineMatchesScaleAndShiftOnEveryLayout) {
  const double alpha = -1.5, beta = 0.25;
  for (const Layout layout : all_layouts()) {
    const Tensor x = strided_input(layout, 17, 3, dtype(), 54, -2.0, 2.0);
    std::vector<double> want = read_values(x);
    for (double& v : want) v = alpha * v + beta;
    const Tensor out = Tensor::empty({17, 3}, dtype());
    cpu_kernels().affine(x, alpha, beta, out);
    expect_all_close(out, want, tol(), 1.0, layout_name(layout));
  }
}

// gemm relies on affine(c, beta, 0, c): the kernel must work in place.
TEST_P(BinaryKernel, AffineWorksInPlace) {
  const Tensor x = random_normal({33, 3}, dtype(), 55);
  std::vector<double> want = read_values(x);
  for (double& v : want) v = 3.0 * v - 1.0;
  cpu_kernels().affine(x, 3.0, -1.0, x);
  expect_all_close(x, want, tol());
}

INSTANTIATE_TEST_SUITE_P(Floating, BinaryKernel, floating_dtypes(), dtype_test_name);

}  // namespace
}  // namespace topkformer::testing
