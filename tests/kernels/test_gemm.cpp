// gemm against a triple loop in double: every transpose combination, operands
// that are views (leading dimensions, transposes, stride-0 batches), batches of
// rank 3 and 4, alpha/beta, and an empty inner dimension.
#include <cmath>
#include <string>

#include "kernels/gemm_reference.h"
#include "kernels/reference.h"

namespace topkformer::testing {
namespace {

// c[item] = alpha * op(a[item]) op(b[item]) + beta * c[item], from the logical values.
std::vector<double> reference_gemm(const Tensor& a, bool ta, const Tensor& b, bool tb,
                                   const Tensor& c, double alpha, double beta) {
  const std::vector<double> av = read_values(a), bv = read_values(b);
  std::vector<double> cv = read_values(c);
  const std::int64_t m = c.size(-2), n = c.size(-1), k = ta ? a.size(-2) : a.size(-1);
  const std::int64_t a_cols = a.size(-1), b_cols = b.size(-1);
  const std::int64_t items = m * n == 0 ? 0 : c.numel() / (m * n);
  for (std::int64_t item = 0; item < items; ++item) {
    const double* ai = av.data() + item * m * k;
    const double* bi = bv.data() + item * k * n;
    for (std::int64_t i = 0; i < m; ++i) {
      for (std::int64_t j = 0; j < n; ++j) {
        double total = 0.0;
        for (std::int64_t p = 0; p < k; ++p) {
          const double x = ta ? ai[p * a_cols + i] : ai[i * a_cols + p];
          const double y = tb ? bi[j * b_cols + p] : bi[p * b_cols + j];
          total += x * y;
        }
        double& out = cv[(item * m + i) * n + j];
        out = alpha * total + beta * out;
      }
    }
  }
  return cv;
}

std::string describe(const Tensor& t, bool transposed) {
  return shape_str(t.shape()) + " strides " + shape_str(t.strides()) + (transposed ? "^T" : "");
}

// Runs the kernel and compares with the reference. Products of k unit normals
// have magnitude ~sqrt(k), so the error is bounded relative to that.
void check_gemm(const Tensor& a, bool ta, const Tensor& b, bool tb, const Tensor& c, double alpha,
                double beta) {
  const std::vector<double> want = reference_gemm(a, ta, b, tb, c, alpha, beta);
  cpu_kernels().gemm(a, ta, b, tb, c, alpha, beta);
  const double k = double(ta ? a.size(-2) : a.size(-1));
  expect_all_close(c, want, tolerance(c.dtype()), std::max(1.0, std::sqrt(k)),
                   describe(a, ta) + " x " + describe(b, tb) + " -> " + describe(c, false));
}

struct Dims {
  std::int64_t m, n, k;
};
const Dims odd_dims[] = {{1, 1, 1}, {3, 17, 5}, {17, 3, 33}, {33, 1, 17}, {1, 33, 3}};

class GemmKernel : public FloatingKernelTest {};

TEST_P(GemmKernel, AllTransposeCombinationsMatchReference) {
  for (const Dims& d : odd_dims) {
    for (const bool ta : {false, true}) {
      for (const bool tb : {false, true}) {
        const Tensor a =
            ta ? random_normal({d.k, d.m}, dtype(), 1) : random_normal({d.m, d.k}, dtype(), 1);
        const Tensor b =
            tb ? random_normal({d.n, d.k}, dtype(), 2) : random_normal({d.k, d.n}, dtype(), 2);
        check_gemm(a, ta, b, tb, random_normal({d.m, d.n}, dtype(), 3), 1.0, 0.0);
      }
    }
  }
}

// Every pair of operand layouts under every pair of flags; this includes a
// transpose view passed with the opposite flag (column-major with ^T).
TEST_P(GemmKernel, OperandViewsWithLeadingDimensionsMatchReference) {
  for (const Dims& d : {Dims{7, 5, 9}, Dims{1, 4, 3}, Dims{6, 1, 1}}) {
    for (const MatrixLayout la : matrix_layouts) {
      for (const MatrixLayout lb : matrix_layouts) {
        for (const bool ta : {false, true}) {
          for (const bool tb : {false, true}) {
            const Tensor a =
                ta ? matrix({}, d.k, d.m, la, dtype(), 4) : matrix({}, d.m, d.k, la, dtype(), 4);
            const Tensor b =
                tb ? matrix({}, d.n, d.k, lb, dtype(), 5) : matrix({}, d.k, d.n, lb, dtype(), 5);
            check_gemm(a, ta, b, tb, random_normal({d.m, d.n}, dtype(), 6), 1.0, 0.0);
          }
        }
      }
    }
  }
}

// c may have a leading dimension: columns outside the view must stay untouched.
TEST_P(GemmKernel, OutputViewWithLeadingDimensionKeepsItsPadding) {
  const std::int64_t m = 5, n = 7, k = 3;
  const Tensor wide = random_normal({m, n + 4}, dtype(), 7);
  const Tensor left = wide.narrow(1, 0, 1), right = wide.narrow(1, n + 1, 3);
  const std::vector<double> left_before = read_values(left), right_before = read_values(right);
  check_gemm(random_normal({m, k}, dtype(), 8), false, random_normal({k, n}, dtype(), 9), false,
             wide.narrow(1, 1, n), 1.5, 0.5);
  EXPECT_EQ(read_values(left), left_before);
  EXPECT_EQ(read_values(right), right_before);
}

TEST_P(GemmKernel, Rank3BatchMatchesReference) {
  for (const bool ta : {false, true}) {
    for (const bool tb : {false, true}) {
      const std::int64_t m = 5, n = 3, k = 17;
      const Tensor a = ta ? matrix({3}, k, m, MatrixLayout::column_major, dtype(), 10)
                          : matrix({3}, m, k, MatrixLayout::padded_row_major, dtype(), 10);
      const Tensor b = tb ? matrix({3}, n, k, MatrixLayout::row_major, dtype(), 11)
                          : matrix({3}, k, n, MatrixLayout::padded_column_major, dtype(), 11);
      check_gemm(a, ta, b, tb, random_normal({3, m, n}, dtype(), 12), 1.0, 0.0);
    }
  }
}

// Attention-shaped rank-4 operands: [B, L, H, D] permuted to [B, H, L, D], so
// the batch strides are not multiples of the matrix size.
TEST_P(GemmKernel, Rank4PermutedBatchMatchesReference) {
  const std::int64_t batch = 2, heads = 3, length = 5, width = 4;
  const Tensor q = random_normal({batch, length, heads, width}, dtype(), 13).permute({0, 2, 1, 3});
  const Tensor k = random_normal({batch, length, heads, width}, dtype(), 14).permute({0, 2, 1, 3});
  check_gemm(q, false, k, true, random_normal({batch, heads, length, length}, dtype(), 15), 0.5,
             0.0);
  const Tensor scores = random_normal({batch, heads, length, length}, dtype(), 16);
  check_gemm(scores, false, k, false, random_normal({batch, heads, length, width}, dtype(), 17),
             1.0, 0.0);
}

// A batch stride of 0 (expand) shares one matrix across the batch.
TEST_P(GemmKernel, StrideZeroBatchBroadcastsOneMatrix) {
  const std::int64_t m = 4, n = 6, k = 5;
  const Tensor shared_a = random_normal({1, m, k}, dtype(), 18).expand({3, m, k});
  check_gemm(shared_a, false, random_normal({3, k, n}, dtype(), 19), false,
             random_normal({3, m, n}, dtype(), 20), 1.0, 0.0);
  const Tensor shared_b = random_normal({1, n, k}, dtype(), 21).expand({3, n, k});
  check_gemm(random_normal({3, m, k}, dtype(), 22), false, shared_b, true,
             random_normal({3, m, n}, dtype(), 23), 1.0, 0.0);
  const Tensor per_row_b = random_normal({2, 1, k, n}, dtype(), 24).expand({2, 3, k, n});
  check_gemm(random_normal({2, 3, m, k}, dtype(), 25), false, per_row_b, false,
             random_normal({2, 3, m, n}, dtype(), 26), 1.0, 0.0);
}

TEST_P(GemmKernel, AlphaAndBetaScaleProductAndAccumulator) {
  const std::pair<double, double> scalings[] = {{2.5, 0.0}, {-0.5, 1.0}, {1.0, -2.0}, {0.0, 0.5}};
  for (const auto& [alpha, beta] : scalings) {
    check_gemm(random_normal({6, 17}, dtype(), 27), false, random_normal({3, 17}, dtype(), 28),
               true, random_normal({6, 3}, dtype(), 29), alpha, beta);
  }
}

// With k == 0 the product is an empty sum: c = beta * c (and beta = 0 clears c).
TEST_P(GemmKernel, EmptyInnerDimensionScalesOutputByBeta) {
  for (const double beta : {0.0, 0.5, 1.0}) {
    check_gemm(Tensor::empty({4, 0}, dtype()), false, Tensor::empty({0, 3}, dtype()), false,
               random_normal({4, 3}, dtype(), 30), 2.0, beta);
    check_gemm(Tensor::empty({2, 0, 4}, dtype()), true, Tensor::empty({2, 3, 0}, dtype()), true,
               random_normal({2, 4, 3}, dtype(), 31), 2.0, beta);
  }
}

INSTANTIATE_TEST_SUITE_P(Floating, GemmKernel, floating_dtypes(), dtype_test_name);

}  // namespace
}  // namespace topkformer::testing
