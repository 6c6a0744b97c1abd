// The CUDA causal linear attention beyond its parity rows (tests/kernels/
// test_backend_parity.cpp): where the denominator is 0 the output is exactly
// 0 and no gradient is NaN; the same bits on every run; operand errors.
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

class CudaLinearAttentionKernel : public FloatingKernelTest {};

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
