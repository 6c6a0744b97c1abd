// The CUDA causal linear attention (Performer's prefix sums) and its backward
// pass against the CPU twin on the same inputs: positive features as
// Performer's (uniform in [0.01, 1]), values and output gradients N(0, 1);
// lengths from 1 to 4100 (the GPU splits long groups into segments whose
// prefix states are summed separately), feature counts 1, 7, 256 and 600
// (more than one warp along m), value widths 1, 33, 64 and 130; a prefix of
// zero phi_k rows for the rule "0 where the denominator is 0".
//
// Tolerances: both devices compute every sum in double from the same inputs
// and round once to the dtype at the end. They add in different orders (the
// GPU by segments and fixed butterflies), which moves a result by about
// L * 1.1e-16 relative to the sum of its terms' magnitudes: under 5e-13 for
// L = 4100, and the results here (averages of values, gradients of them)
// are not much smaller than those sums. So f64 results agree to 1e-12, and
// f32 results, whatever L, differ by the final rounding only (at most one
// ulp, 1.2e-7 relative): 1e-6.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/cuda_test_util.h"
#include "kernels/linear_attention_reference.h"
#include "test_util.h"

namespace topkformer::testing {
namespace {

using Problem = LinearAttentionProblem;

const Problem problems[] = {
    {1, 1, 1, 1},      {5, 5, 7, 33},      {1, 5, 256, 1},   {5, 300, 7, 1},   {1, 300, 256, 64},
    {5, 300, 256, 33}, {2, 300, 600, 130}, {5, 4100, 1, 33}, {1, 4100, 7, 64}, {1, 4100, 256, 64},
};

// Performer's features, uniform in [0.01, 1); the output gradient d_out is
// N(0, 1) like the values.
struct Inputs : LinearAttentionInputs {
  Tensor d_out;  // on the CPU
};

Inputs make_inputs(const Problem& p, DType dtype, std::uint64_t seed,
                   std::int64_t zero_prefix = 0) {
  return {linear_attention_inputs(p, dtype, seed, 0.01, zero_prefix),
          random_normal(p.value_shape(), dtype, seed + 3)};
}

struct Results {
  Tensor out, d_phi_q, d_phi_k, d_v;
};

// Forward and backward on `device`; outputs start as 7s, which must all be
// overwritten.
Results run(kernels::Backend& kernels, const Problem& p, const Inputs& in, Device device) {
  const DType dtype = in.v.dtype();
  const Tensor q = in.phi_q.to(device), k = in.phi_k.to(device), v = in.v.to(device);
  Results r{Tensor::full(p.value_shape(), 7.0, dtype).to(device),
            Tensor::full(p.feature_shape(), 7.0, dtype).to(device),
            Tensor::full(p.feature_shape(), 7.0, dtype).to(device),
            Tensor::full(p.value_shape(), 7.0, dtype).to(device)};
  kernels.causal_linear_attention(q, k, v, r.out);
  kernels.causal_linear_attention_backward(q, k, v, in.d_out.to(device), r.d_phi_q, r.d_phi_k,
                                           r.d_v);
  return r;
}

class CudaLinearAttentionKernel : public FloatingKernelTest {
 protected:
  void expect_matches(const Problem& p, const Inputs& in, const std::string& what) {
    const Results want = run(cpu_kernels(), p, in, Device::cpu());
    const Results got = run(gpu_kernels(), p, in, gpu);
    const double tol = dtype() == DType::f64 ? 1e-12 : 1e-6;
    expect_matches_cpu(got.out, want.out, tol, 1.0, what + " out");
    expect_matches_cpu(got.d_phi_q, want.d_phi_q, tol, 1.0, what + " d_phi_q");
    expect_matches_cpu(got.d_phi_k, want.d_phi_k, tol, 1.0, what + " d_phi_k");
    expect_matches_cpu(got.d_v, want.d_v, tol, 1.0, what + " d_v");
  }
};

TEST_P(CudaLinearAttentionKernel, MatchesCpu) {
  SKIP_WITHOUT_GPU();
  std::uint64_t seed = 500;
  for (const Problem& p : problems) {
    expect_matches(p, make_inputs(p, dtype(), seed += 10), p.name());
  }
}

// The last group's first rows have phi_k = 0: their outputs are exactly 0 and
// no gradient is NaN. 3 of 5 rows, and 1500 of 4100 (more than a segment, so
// whole segments start from and add a zero state).
TEST_P(CudaLinearAttentionKernel, ZeroDenominatorGivesZero) {
  SKIP_WITHOUT_GPU();
  const struct {
    Problem problem;
    std::int64_t zero_prefix;
  } cases[] = {{{2, 5, 7, 33}, 3}, {{2, 4100, 256, 64}, 1500}, {{1, 300, 1, 1}, 299}};
  for (const auto& c : cases) {
    const Problem& p = c.problem;
    const std::string what = p.name() + " zero prefix " + std::to_string(c.zero_prefix);
    const Inputs in = make_inputs(p, dtype(), 600, c.zero_prefix);
    const Results got = run(gpu_kernels(), p, in, gpu);
    const std::vector<double> out = read_values(got.out.to(Device::cpu()));
    const std::int64_t last = (p.groups - 1) * p.length;
    std::int64_t nonzero = 0;
    for (std::int64_t e = last * p.width; e < (last + c.zero_prefix) * p.width; ++e) {
      nonzero += out[e] != 0.0;
    }
    EXPECT_EQ(nonzero, 0) << what;
    for (const Tensor& gradient : {got.d_phi_q, got.d_phi_k, got.d_v}) {
      for (const double value : read_values(gradient.to(Device::cpu()))) {
        ASSERT_TRUE(std::isfinite(value)) << what;
      }
    }
    expect_matches(p, in, what);
  }
}

// Fixed-order sums: the same inputs give the same bits.
TEST_P(CudaLinearAttentionKernel, IsDeterministic) {
  SKIP_WITHOUT_GPU();
  const Problem p{5, 4100, 256, 33};
  const Inputs in = make_inputs(p, dtype(), 700);
  const Results first = run(gpu_kernels(), p, in, gpu);
  const Results second = run(gpu_kernels(), p, in, gpu);
  EXPECT_EQ(read_values(first.out.to(Device::cpu())), read_values(second.out.to(Device::cpu())));
  EXPECT_EQ(read_values(first.d_phi_q.to(Device::cpu())),
            read_values(second.d_phi_q.to(Device::cpu())));
  EXPECT_EQ(read_values(first.d_phi_k.to(Device::cpu())),
            read_values(second.d_phi_k.to(Device::cpu())));
  EXPECT_EQ(read_values(first.d_v.to(Device::cpu())), read_values(second.d_v.to(Device::cpu())));
}

// No rows, no features or no values: nothing to compute, or zeros as on the CPU.
TEST_P(CudaLinearAttentionKernel, EmptyDimensions) {
  SKIP_WITHOUT_GPU();
  for (const Problem& p :
       {Problem{0, 5, 3, 4}, Problem{2, 0, 3, 4}, Problem{2, 5, 0, 4}, Problem{2, 5, 3, 0}}) {
    expect_matches(p, make_inputs(p, dtype(), 800), p.name());
  }
}

TEST_P(CudaLinearAttentionKernel, OperandsOnAnotherDeviceAreAnError) {
  SKIP_WITHOUT_GPU();
  const Problem p{1, 5, 3, 4};
  const Inputs in = make_inputs(p, dtype(), 900);
  const Tensor q = on_gpu(in.phi_q), k = on_gpu(in.phi_k), v = on_gpu(in.v);
  const Tensor out = Tensor::empty(p.value_shape(), dtype(), gpu);
  expect_error_containing([&] { gpu_kernels().causal_linear_attention(in.phi_q, k, v, out); },
                          {"causal_linear_attention", "cuda:0", "cpu"});
  const Tensor dq = Tensor::empty(p.feature_shape(), dtype(), gpu);
  const Tensor dk = Tensor::empty(p.feature_shape(), dtype(), gpu);
  expect_error_containing(
      [&] { gpu_kernels().causal_linear_attention_backward(q, k, v, in.d_out, dq, dk, out); },
      {"causal_linear_attention_backward", "cuda:0", "cpu"});
}

TEST_P(CudaLinearAttentionKernel, MisshapedOutputsAreAnError) {
  SKIP_WITHOUT_GPU();
  const Problem p{1, 5, 3, 4};
  const Inputs in = make_inputs(p, dtype(), 910);
  const Tensor q = on_gpu(in.phi_q), k = on_gpu(in.phi_k), v = on_gpu(in.v);
  const Tensor d_out = on_gpu(in.d_out);
  expect_error_containing(
      [&] {
        gpu_kernels().causal_linear_attention(q, k, v, Tensor::empty({1, 5, 3}, dtype(), gpu));
      },
      {"causal_linear_attention", "out", "[1, 5, 4]", "[1, 5, 3]"});
  const Tensor features = Tensor::empty(p.feature_shape(), dtype(), gpu);
  expect_error_containing(
      [&] {
        gpu_kernels().causal_linear_attention_backward(q, k, v, d_out, features, features,
                                                       Tensor::empty({1, 4, 4}, dtype(), gpu));
      },
      {"causal_linear_attention_backward", "d_v", "[1, 5, 4]", "[1, 4, 4]"});
}

INSTANTIATE_TEST_SUITE_P(Cuda, CudaLinearAttentionKernel, floating_dtypes(), dtype_test_name);

}  // namespace
}  // namespace topkformer::testing
