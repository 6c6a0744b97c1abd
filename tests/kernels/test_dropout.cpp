// dropout: the mask is the pure function of backend.h (with the default
// addressing, element e is kept iff uniform_f32(philox_word(seed, offset + e))
// >= p), kept values are scaled by 1 / (1 - p), the same state replays the
// same mask, and chunk/column addressing draws the words of the whole matrix.
#include <cmath>

#include "kernels/dropout_reference.h"
#include "kernels/reference.h"

namespace topkformer::testing {
namespace {

constexpr PhiloxState state{0x123456789abcdefULL, 6};  // an offset inside a Philox block

bool reference_keep(PhiloxState s, std::int64_t e, double p) {
  return double(uniform_f32(philox_word(s.seed, s.offset + std::uint64_t(e)))) >= p;
}

// Dropout with the default addressing: element e reads word state.offset + e.
void run_dropout(const Tensor& x, double p, PhiloxState s, const Tensor& out) {
  cpu_kernels().dropout(x, p, s, kernels::DropoutAddressing{}, out);
}

class DropoutKernel : public FloatingKernelTest {};

TEST_P(DropoutKernel, ZeroProbabilityIsIdentity) {
  const Tensor x = random_normal({17, 33}, dtype(), 110);
  const Tensor out = Tensor::empty({17, 33}, dtype());
  run_dropout(x, 0.0, state, out);
  EXPECT_EQ(read_values(out), read_values(x));
}

TEST_P(DropoutKernel, KeepsExactlyElementsWhoseUniformReachesP) {
  for (const double p : {0.1, 0.5, 0.9}) {
    // Inputs away from 0, so that a zero output means a dropped element.
    const Tensor x = random_uniform({3, 17}, dtype(), 111, 0.5, 1.5);
    const Tensor out = Tensor::empty({3, 17}, dtype());
    run_dropout(x, p, state, out);
    const std::vector<double> xv = read_values(x), got = read_values(out);
    std::vector<double> want(xv.size());
    for (std::size_t e = 0; e < xv.size(); ++e) {
      const bool kept = reference_keep(state, std::int64_t(e), p);
      want[e] = kept ? xv[e] / (1.0 - p) : 0.0;
      EXPECT_EQ(got[e] != 0.0, kept) << "p " << p << " element " << e;
    }
    expect_all_close(got, want, tol(), 1.0, "p " + std::to_string(p));
  }
}

// The backward is the same call on the gradient: it must drop the same elements.
TEST_P(DropoutKernel, SameStateReplaysTheMaskAndAnotherOffsetDoesNot) {
  const Tensor x = random_uniform({5, 33}, dtype(), 112, 0.5, 1.5);
  const Tensor grad = random_uniform({5, 33}, dtype(), 113, 0.5, 1.5);
  const Tensor first = Tensor::empty({5, 33}, dtype()), again = Tensor::empty({5, 33}, dtype());
  const Tensor backward = Tensor::empty({5, 33}, dtype()),
               shifted = Tensor::empty({5, 33}, dtype());
  run_dropout(x, 0.5, state, first);
  run_dropout(x, 0.5, state, again);
  run_dropout(grad, 0.5, state, backward);
  run_dropout(x, 0.5, PhiloxState{state.seed, state.offset + 1000}, shifted);
  EXPECT_EQ(read_values(first), read_values(again));
  const std::vector<double> f = read_values(first), b = read_values(backward),
                            s = read_values(shifted);
  std::size_t same_pattern = 0, same_as_shifted = 0;
  for (std::size_t e = 0; e < f.size(); ++e) {
    same_pattern += (f[e] == 0.0) == (b[e] == 0.0);
    same_as_shifted += (f[e] == 0.0) == (s[e] == 0.0);
  }
  EXPECT_EQ(same_pattern, f.size());
  EXPECT_LT(same_as_shifted, f.size());
}

// Keeping is Bernoulli(1 - p): on 1e5 elements the kept fraction is within 5
// standard deviations (sqrt(p (1 - p) / n) = 0.0014) of 1 - p.
TEST_P(DropoutKernel, KeptFractionIsOneMinusPAndKeptValuesAreScaled) {
  const double p = 0.3;
  const std::int64_t n = 100000;
  const Tensor out = Tensor::empty({n}, dtype());
  run_dropout(Tensor::ones({n}, dtype()), p, state, out);
  std::int64_t kept = 0;
  for (const double v : read_values(out)) {
    if (v == 0.0) continue;
    ++kept;
    ASSERT_NEAR(v, 1.0 / (1.0 - p), tol());
  }
  EXPECT_NEAR(double(kept) / double(n), 1.0 - p, 5.0 * std::sqrt(p * (1.0 - p) / double(n)));
}

// The threshold is p itself: for p in [0.5, 1) that is not a multiple of 2^-24,
// float(p) may round down onto a uniform value u < p, which must still be
// dropped. Element e below is chosen so that its u is such a value.
TEST_P(DropoutKernel, ThresholdIsTheExactProbabilityNotItsFloatRounding) {
  std::int64_t e = 0;
  while (uniform_f32(philox_word(state.seed, state.offset + std::uint64_t(e))) < 0.5f) ++e;
  const double u = uniform_f32(philox_word(state.seed, state.offset + std::uint64_t(e)));
  const double p = u + 0x1p-26;  // a quarter of f32's spacing above u: float(p) == u
  ASSERT_EQ(double(static_cast<float>(p)), u);
  ASSERT_FALSE(reference_keep(state, e, p));
  const Tensor out = Tensor::empty({e + 1}, dtype());
  run_dropout(Tensor::ones({e + 1}, dtype()), p, state, out);
  EXPECT_EQ(read_values(out).back(), 0.0) << "u = " << u << " < p = " << p << " was kept";
}

// A chunk of query rows [G, C, Lk] of a [G, Lq, Lk] matrix, addressed as
// rows first_row.. of blocks of Lq rows, draws the words the whole matrix
// would: its output is the matching slice of the whole output.
TEST_P(DropoutKernel, ChunkAddressingReproducesTheWholeMatrixMask) {
  const std::int64_t groups = 2, queries = 6, keys = 5, first = 2, chunk = 3;
  const Tensor whole = random_uniform({groups, queries, keys}, dtype(), 114, 0.5, 1.5);
  const Tensor whole_out = Tensor::empty({groups, queries, keys}, dtype());
  run_dropout(whole, 0.5, state, whole_out);
  const Tensor part = whole.narrow(1, first, chunk).contiguous();
  const Tensor part_out = Tensor::empty({groups, chunk, keys}, dtype());
  kernels::DropoutAddressing addressing;
  addressing.rows_per_block = chunk;
  addressing.block_stride = queries;
  addressing.first_row = first;
  addressing.row_words = keys;
  cpu_kernels().dropout(part, 0.5, state, addressing, part_out);
  EXPECT_EQ(read_values(part_out), read_values(whole_out.narrow(1, first, chunk)));
}

// Sparse rows keep entries of key `columns[r, j]`: each is dropped exactly
// when the dense element (r, columns[r, j]) is.
TEST_P(DropoutKernel, ColumnAddressingFollowsTheKeyIndex) {
  const std::int64_t rows = 4, keys = 9, kept = 3;
  const Tensor dense = random_uniform({rows, keys}, dtype(), 115, 0.5, 1.5);
  const Tensor dense_out = Tensor::empty({rows, keys}, dtype());
  run_dropout(dense, 0.3, state, dense_out);
  const PickedColumns picked = pick_columns(dense, dense_out, kept, 5, 4);
  kernels::DropoutAddressing addressing;
  addressing.row_words = keys;
  addressing.columns = tensor_of({rows, kept}, picked.columns, DType::i32);
  const Tensor out = Tensor::empty({rows, kept}, dtype());
  cpu_kernels().dropout(tensor_of({rows, kept}, picked.inputs, dtype()), 0.3, state, addressing,
                        out);
  EXPECT_EQ(read_values(out), picked.outputs);
}

INSTANTIATE_TEST_SUITE_P(Floating, DropoutKernel, floating_dtypes(), dtype_test_name);

}  // namespace
}  // namespace topkformer::testing
