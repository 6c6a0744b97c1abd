// The CUDA random fills and dropout against their CPU twins: both compute
// Philox (rng.h) on the same words, so uniforms and dropout outputs are
// bitwise equal to the CPU's (whatever the offset's position in a Philox
// block and the tensor's size), normals equal up to the device's log and cos;
// dropout's chunk and column addressing draw the words of the whole matrix.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/cuda_test_util.h"
#include "kernels/dropout_reference.h"
#include "test_util.h"

namespace topkformer::testing {
namespace {

// Offsets at each position in a Philox block (four words), and one whose
// block index passes 2^32 (the counter's high word).
const std::uint64_t offsets[] = {0, 1, 2, 3, 6, (std::uint64_t{1} << 34) + 5};
const std::uint64_t seeds[] = {20240917, 0xfedcba9876543210ULL};
const std::int64_t sizes[] = {1, 2, 3, 5, 17, 1000, 100003};

std::string describe(std::uint64_t seed, std::uint64_t offset, std::int64_t n) {
  return "seed " + std::to_string(seed) + " offset " + std::to_string(offset) + " n " +
         std::to_string(n);
}

class CudaRandomKernel : public FloatingKernelTest {};

// The same words and the same arithmetic (one fused multiply-add in double):
// the same bits.
TEST_P(CudaRandomKernel, UniformIsBitwiseTheCpus) {
  SKIP_WITHOUT_GPU();
  for (const std::uint64_t seed : seeds) {
    for (const std::uint64_t offset : offsets) {
      for (const std::int64_t n : sizes) {
        for (const auto& [low, high] : {std::pair{0.0, 1.0}, {-2.0, 3.0}, {-1.0, 4.0}}) {
          const PhiloxState state{seed, offset};
          const Tensor want = Tensor::empty({n}, dtype());
          cpu_kernels().uniform(want, state, low, high);
          const Tensor got = Tensor::empty({n}, dtype(), gpu);
          gpu_kernels().uniform(got, state, low, high);
          expect_matches_cpu(got, want, 0.0, 1.0, describe(seed, offset, n));
        }
      }
    }
  }
}

// The same uniforms u1, u2 and the same formula sqrt(-2 log u1) cos(2 pi u2)
// in double, where CUDA's log and cos are within 1 and 2 ulp and glibc's
// within 1: z agrees to a few ulp of double. mean + std * z is one fused
// multiply-add on both, so an f64 result is within ~1e-15 of std * 6 (z is
// at most sqrt(2 ln 2^24) < 6); an f32 result is that double rounded, equal
// unless the double lies within 1e-15 of a rounding boundary, and then one
// f32 ulp (2^-23 relative) away.
TEST_P(CudaRandomKernel, NormalMatchesCpuToTheDevicesLogAndCos) {
  SKIP_WITHOUT_GPU();
  const double rel_tol = dtype() == DType::f64 ? 1e-14 : 0x1p-23;
  for (const std::uint64_t offset : offsets) {
    for (const std::int64_t n : sizes) {
      for (const auto& [mean, sigma] : {std::pair{0.0, 1.0}, {1.5, 2.0}, {-0.25, 0.02}}) {
        const PhiloxState state{seeds[1], offset};
        const Tensor want = Tensor::empty({n}, dtype());
        cpu_kernels().normal(want, state, mean, sigma);
        const Tensor got = Tensor::empty({n}, dtype(), gpu);
        gpu_kernels().normal(got, state, mean, sigma);
        expect_matches_cpu(got, want, rel_tol, sigma, describe(seeds[1], offset, n));
      }
    }
  }
}

TEST_P(CudaRandomKernel, EmptyFillsAreANoOp) {
  SKIP_WITHOUT_GPU();
  run_and_synchronize([&] {
    gpu_kernels().uniform(Tensor::empty({0}, dtype(), gpu), PhiloxState{1, 0}, 0.0, 1.0);
    gpu_kernels().normal(Tensor::empty({0, 3}, dtype(), gpu), PhiloxState{1, 0}, 0.0, 1.0);
  });
}

// ---- dropout ----

constexpr PhiloxState dropout_state{0x123456789abcdefULL, 6};  // inside a Philox block

// x uniform in [0.5, 1.5): a zero output means a dropped element.
Tensor dropout_input(const Shape& shape, DType dtype, std::uint64_t seed) {
  return random_uniform(shape, dtype, seed, 0.5, 1.5);
}

// The GPU's output for x (on the CPU) and the CPU's, which must be equal:
// the same keep decisions (integer comparisons of the same words) and the
// same product x * float(1 / (1 - p)).
void expect_dropout_matches_cpu(const Tensor& x, double p, PhiloxState state,
                                const kernels::DropoutAddressing& cpu_addressing,
                                const kernels::DropoutAddressing& gpu_addressing,
                                const std::string& what) {
  const Tensor want = Tensor::empty(x.shape(), x.dtype());
  cpu_kernels().dropout(x, p, state, cpu_addressing, want);
  const Tensor got = Tensor::empty(x.shape(), x.dtype(), gpu);
  gpu_kernels().dropout(on_gpu(x), p, state, gpu_addressing, got);
  expect_matches_cpu(got, want, 0.0, 1.0, what);
}

void expect_dropout_matches_cpu(const Tensor& x, double p, PhiloxState state,
                                const std::string& what) {
  expect_dropout_matches_cpu(x, p, state, {}, {}, what);
}

TEST_P(CudaRandomKernel, DropoutEqualsCpu) {
  SKIP_WITHOUT_GPU();
  const Shape dropout_shapes[] = {{1}, {3, 17}, {5, 1}, {4, 37, 1000}, {100003}};
  for (const double p : {0.0, 0.1, 0.5, 0.9}) {
    for (const std::uint64_t offset : offsets) {
      for (const Shape& shape : dropout_shapes) {
        expect_dropout_matches_cpu(dropout_input(shape, dtype(), 110), p,
                                   PhiloxState{dropout_state.seed, offset},
                                   "p " + std::to_string(p) + " offset " + std::to_string(offset) +
                                       " " + shape_str(shape));
      }
    }
  }
}

// The threshold is p itself, not float(p): an element whose uniform u lies
// just below p (float(p) == u) is dropped.
TEST_P(CudaRandomKernel, DropoutThresholdIsTheExactProbability) {
  SKIP_WITHOUT_GPU();
  const PhiloxState s = dropout_state;
  std::int64_t e = 0;
  while (uniform_f32(philox_word(s.seed, s.offset + std::uint64_t(e))) < 0.5f) ++e;
  const double u = uniform_f32(philox_word(s.seed, s.offset + std::uint64_t(e)));
  const double p = u + 0x1p-26;
  ASSERT_EQ(double(static_cast<float>(p)), u);
  const Tensor out = Tensor::empty({e + 1}, dtype(), gpu);
  gpu_kernels().dropout(Tensor::ones({e + 1}, dtype(), gpu), p, s, {}, out);
  EXPECT_EQ(read_values(out.to(Device::cpu())).back(), 0.0) << "u = " << u << " < p = " << p;
  expect_dropout_matches_cpu(Tensor::ones({e + 1}, dtype()), p, s, "threshold");
}

// Chunks of query rows [G, C, Lk] of a [G, Lq, Lk] matrix, addressed as rows
// first_row.. of blocks of Lq rows: each chunk's output is the matching slice
// of the whole matrix's output, and the CPU's for the same chunk. Lk = 129
// puts row starts at every position in a Philox block.
TEST_P(CudaRandomKernel, DropoutChunksDrawTheWordsOfTheWholeMatrix) {
  SKIP_WITHOUT_GPU();
  const std::int64_t groups = 3, queries = 37, keys = 129;
  const Tensor whole = dropout_input({groups, queries, keys}, dtype(), 114);
  const Tensor whole_out = Tensor::empty({groups, queries, keys}, dtype(), gpu);
  gpu_kernels().dropout(on_gpu(whole), 0.4, dropout_state, {}, whole_out);
  for (const auto& [first, chunk] :
       {std::pair<std::int64_t, std::int64_t>{0, 5}, {5, 5}, {35, 2}, {1, 36}, {0, 37}}) {
    kernels::DropoutAddressing addressing;
    addressing.rows_per_block = chunk;
    addressing.block_stride = queries;
    addressing.first_row = first;
    addressing.row_words = keys;
    const Tensor part = whole.narrow(1, first, chunk).contiguous();
    const Tensor part_out = Tensor::empty({groups, chunk, keys}, dtype(), gpu);
    gpu_kernels().dropout(on_gpu(part), 0.4, dropout_state, addressing, part_out);
    const std::string what = "rows " + std::to_string(first) + "+" + std::to_string(chunk);
    EXPECT_EQ(read_values(part_out.to(Device::cpu())),
              read_values(whole_out.narrow(1, first, chunk).to(Device::cpu())))
        << what;
    expect_dropout_matches_cpu(part, 0.4, dropout_state, addressing, addressing, what);
  }
}

// Sparse rows [R, k] whose entry j is key columns[r, j] of a dense [R, Lk]
// row: dropped exactly when the dense element is, with i32 and i64 columns
// (row_words = Lk).
TEST_P(CudaRandomKernel, DropoutColumnsFollowTheKeyIndex) {
  SKIP_WITHOUT_GPU();
  const std::int64_t rows = 50, keys = 301, kept = 7;
  const Tensor dense = dropout_input({rows, keys}, dtype(), 115);
  const Tensor dense_out = Tensor::empty({rows, keys}, dtype(), gpu);
  gpu_kernels().dropout(on_gpu(dense), 0.3, dropout_state, {}, dense_out);
  const PickedColumns picked = pick_columns(dense, dense_out, kept, 53, 97);
  const Tensor x = tensor_of({rows, kept}, picked.inputs, dtype());
  for (const DType index_dtype : {DType::i32, DType::i64}) {
    kernels::DropoutAddressing cpu_addressing, gpu_addressing;
    cpu_addressing.row_words = gpu_addressing.row_words = keys;
    cpu_addressing.columns = tensor_of({rows, kept}, picked.columns, index_dtype);
    gpu_addressing.columns = on_gpu(cpu_addressing.columns);
    const Tensor out = Tensor::empty({rows, kept}, dtype(), gpu);
    gpu_kernels().dropout(on_gpu(x), 0.3, dropout_state, gpu_addressing, out);
    EXPECT_EQ(read_values(out.to(Device::cpu())), picked.outputs) << dtype_name(index_dtype);
    expect_dropout_matches_cpu(x, 0.3, dropout_state, cpu_addressing, gpu_addressing,
                               std::string(dtype_name(index_dtype)));
  }
}

// The backward is the same call on the gradient: the same elements drop.
TEST_P(CudaRandomKernel, DropoutReplaysItsMaskOnTheGradient) {
  SKIP_WITHOUT_GPU();
  const Tensor x = on_gpu(dropout_input({9, 33}, dtype(), 116));
  const Tensor grad = on_gpu(dropout_input({9, 33}, dtype(), 117));
  const Tensor forward = Tensor::empty({9, 33}, dtype(), gpu);
  const Tensor backward = Tensor::empty({9, 33}, dtype(), gpu);
  gpu_kernels().dropout(x, 0.5, dropout_state, {}, forward);
  gpu_kernels().dropout(grad, 0.5, dropout_state, {}, backward);
  const std::vector<double> f = read_values(forward.to(Device::cpu()));
  const std::vector<double> b = read_values(backward.to(Device::cpu()));
  for (std::size_t e = 0; e < f.size(); ++e) EXPECT_EQ(f[e] == 0.0, b[e] == 0.0) << e;
}

TEST_P(CudaRandomKernel, DropoutOfAnEmptyTensorIsANoOp) {
  SKIP_WITHOUT_GPU();
  run_and_synchronize([&] {
    const Tensor empty = Tensor::empty({0, 4}, dtype(), gpu);
    gpu_kernels().dropout(empty, 0.5, dropout_state, {}, empty);
  });
}

INSTANTIATE_TEST_SUITE_P(Cuda, CudaRandomKernel, floating_dtypes(), dtype_test_name);

TEST(CudaRandomErrors, OperandsAndArguments) {
  SKIP_WITHOUT_GPU();
  const Tensor x = Tensor::ones({2, 3}, DType::f32, gpu);
  const Tensor out = Tensor::empty({2, 3}, DType::f32, gpu);
  expect_error_containing(
      [&] {
        gpu_kernels().uniform(Tensor::empty({2, 3}), PhiloxState{}, 0.0, 1.0);
      },
      {"uniform", "expected a CUDA tensor"});
  expect_error_containing(
      [&] { gpu_kernels().normal(out.transpose(0, 1), PhiloxState{}, 0.0, 1.0); },
      {"normal", "contiguous"});
  expect_error_containing(
      [&] { gpu_kernels().uniform(Tensor::empty({2}, DType::i32, gpu), PhiloxState{}, 0.0, 1.0); },
      {"uniform", "i32"});
  expect_error_containing([&] { gpu_kernels().dropout(x, 1.0, PhiloxState{}, {}, out); },
                          {"dropout", "[0, 1)"});
  expect_error_containing(
      [&] {
        gpu_kernels().dropout(Tensor::ones({2, 3}), 0.5, PhiloxState{}, {}, out);
      },
      {"dropout", "cuda:0", "cpu"});
  kernels::DropoutAddressing host_columns;
  host_columns.columns = Tensor::zeros({2, 3}, DType::i64);
  expect_error_containing([&] { gpu_kernels().dropout(x, 0.5, PhiloxState{}, host_columns, out); },
                          {"dropout", "cuda:0", "cpu"});
  kernels::DropoutAddressing short_columns;
  short_columns.columns = Tensor::zeros({2, 2}, DType::i64, gpu);
  expect_error_containing([&] { gpu_kernels().dropout(x, 0.5, PhiloxState{}, short_columns, out); },
                          {"dropout", "columns", "[2, 2]"});
}

}  // namespace
}  // namespace topkformer::testing
