// The CUDA random fills and dropout beyond their parity rows (tests/kernels/
// test_backend_parity.cpp: uniforms and dropout bit for bit, normals to the
// device's log and cos, chunk and column addressing): on the GPU alone, the
// threshold is p itself, a chunk draws the words of the whole matrix, sparse
// columns drop with their dense element, the backward replays the mask;
// empty tensors and errors.
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

class CudaRandomKernel : public FloatingKernelTest {};

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
    const kernels::DropoutAddressing addressing = chunk_addressing(first, chunk, queries, keys);
    const Tensor part = whole.narrow(1, first, chunk).contiguous();
    const Tensor part_out = Tensor::empty({groups, chunk, keys}, dtype(), gpu);
    gpu_kernels().dropout(on_gpu(part), 0.4, dropout_state, addressing, part_out);
    const std::string what = "rows " + std::to_string(first) + "+" + std::to_string(chunk);
    EXPECT_EQ(read_values(part_out.to(Device::cpu())),
              read_values(whole_out.narrow(1, first, chunk).to(Device::cpu())))
        << what;
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
    kernels::DropoutAddressing addressing;
    addressing.row_words = keys;
    addressing.columns = on_gpu(tensor_of({rows, kept}, picked.columns, index_dtype));
    const Tensor out = Tensor::empty({rows, kept}, dtype(), gpu);
    gpu_kernels().dropout(on_gpu(x), 0.3, dropout_state, addressing, out);
    EXPECT_EQ(read_values(out.to(Device::cpu())), picked.outputs) << dtype_name(index_dtype);
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
