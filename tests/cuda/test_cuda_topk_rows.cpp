// The CUDA topk_rows against its CPU twin on the same inputs: f32 and f64,
// i32 and i64 indices, k = 1, 7, 128, 1000, 1024 on rows of n = k (the
// whole-row sort), 5000 and 70000 (radix select), one row and 300 rows; rows
// full of ties, rows with -inf (a masked tail, or all of the row, as masked
// attention rows are), +inf, NaN, -0 next to +0, and denormals; k above 1024
// (selection in rounds); rank-3 inputs; no rows; an operand on the wrong
// device and a k out of range.
//
// Both devices order by the same strict total order (larger first, NaN above
// +inf, -0 equal to +0, ties to the lower index), and values are copies of
// elements: indices must be equal and values equal bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cuda/cuda_test_util.h"
#include "test_util.h"

namespace topkformer::testing {
namespace {

constexpr double inf = std::numeric_limits<double>::infinity();
constexpr double nan = std::numeric_limits<double>::quiet_NaN();

// The bit patterns of a floating tensor's values, widened to 64 bits.
std::vector<std::uint64_t> value_bits(const Tensor& t) {
  std::vector<std::uint64_t> bits;
  if (t.dtype() == DType::f32) {
    for (const float v : t.to_vector<float>()) bits.push_back(std::bit_cast<std::uint32_t>(v));
  } else {
    for (const double v : t.to_vector<double>()) bits.push_back(std::bit_cast<std::uint64_t>(v));
  }
  return bits;
}

// Runs topk_rows on the CPU and on the GPU for both index dtypes and expects
// the same indices and the same value bits.
void expect_topk_matches_cpu(const Tensor& x, std::int64_t k, const std::string& what) {
  Shape out_shape = x.shape();
  out_shape.back() = k;
  const Tensor x_gpu = on_gpu(x);
  for (const DType index_dtype : {DType::i32, DType::i64}) {
    const std::string context = what + " " + shape_str(x.shape()) + " k " + std::to_string(k) +
                                " " + std::string(dtype_name(index_dtype));
    const Tensor want_values = Tensor::empty(out_shape, x.dtype());
    const Tensor want_indices = Tensor::empty(out_shape, index_dtype);
    cpu_kernels().topk_rows(x, k, want_values, want_indices);
    const Tensor values = Tensor::empty(out_shape, x.dtype(), gpu);
    const Tensor indices = Tensor::empty(out_shape, index_dtype, gpu);
    gpu_kernels().topk_rows(x_gpu, k, values, indices);
    const std::vector<std::int64_t> got = read_indices(indices.to(Device::cpu()));
    const std::vector<std::int64_t> want = read_indices(want_indices);
    std::size_t first = 0;
    while (first < want.size() && got[first] == want[first]) ++first;
    EXPECT_EQ(first, want.size()) << context << ": indices differ first at element " << first
                                  << " (got " << got[first] << ", want " << want[first] << ")";
    EXPECT_EQ(value_bits(values), value_bits(want_values)) << context << ": value bits differ";
  }
}

// [rows, n] with values from `draw`, row r and column i.
template <typename Draw>
Tensor rows_of(std::int64_t rows, std::int64_t n, DType dtype, Draw draw) {
  std::vector<double> values(static_cast<std::size_t>(rows * n));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t i = 0; i < n; ++i) values[r * n + i] = draw(r, i);
  }
  return tensor_of({rows, n}, values, dtype);
}

const std::int64_t ks[] = {1, 7, 128, 1000, 1024};
const std::int64_t row_counts[] = {1, 300};

class CudaTopKRows : public FloatingKernelTest {};

TEST_P(CudaTopKRows, RandomRowsMatchCpu) {
  SKIP_WITHOUT_GPU();
  for (const std::int64_t rows : row_counts) {
    for (const std::int64_t n : {std::int64_t{5000}, std::int64_t{70000}}) {
      const Tensor x = random_normal({rows, n}, dtype(), 300 + n + rows);
      for (const std::int64_t k : ks) expect_topk_matches_cpu(x, k, "random");
    }
    for (const std::int64_t k : ks) {
      expect_topk_matches_cpu(random_normal({rows, k}, dtype(), 310 + k), k, "random, n = k");
    }
  }
}

// Lengths around the switch from the whole-row sort (n <= 1024) to selection,
// and rows shorter than a warp.
TEST_P(CudaTopKRows, RowLengthsAroundThePathsMatchCpu) {
  SKIP_WITHOUT_GPU();
  for (const std::int64_t n : {1, 2, 17, 33, 513, 1023, 1024, 1025, 1537}) {
    const Tensor x = random_normal({37, n}, dtype(), 320 + n);
    for (const std::int64_t k : {std::int64_t{1}, (n + 1) / 2, n}) {
      expect_topk_matches_cpu(x, k, "lengths");
    }
  }
}

// Values from {0, 1, 2, 3}: thousands of ties at the k-th value.
TEST_P(CudaTopKRows, TiesGoToTheLowerIndexLikeCpu) {
  SKIP_WITHOUT_GPU();
  for (const std::int64_t rows : row_counts) {
    for (const std::int64_t n : {std::int64_t{1024}, std::int64_t{5000}, std::int64_t{70000}}) {
      std::vector<double> values =
          read_values(random_uniform({rows, n}, dtype(), 330 + n, 0.0, 4.0));
      for (double& v : values) v = std::floor(v);
      const Tensor x = tensor_of({rows, n}, values, dtype());
      for (const std::int64_t k : ks) expect_topk_matches_cpu(x, k, "ties");
    }
  }
}

// Masked attention rows: a visible prefix of scores (its length varying by
// row, 0 for every fifth row) and -inf after it.
TEST_P(CudaTopKRows, MaskedRowsOfMinusInfinityMatchCpu) {
  SKIP_WITHOUT_GPU();
  for (const std::int64_t n : {std::int64_t{1024}, std::int64_t{5000}, std::int64_t{70000}}) {
    const std::vector<double> normal = read_values(random_normal({300, n}, dtype(), 340 + n));
    const Tensor x = rows_of(300, n, dtype(), [&](std::int64_t r, std::int64_t i) {
      const std::int64_t visible = r % 5 == 0 ? 0 : (r * 37) % n;
      return i < visible ? normal[r * n + i] : -inf;
    });
    for (const std::int64_t k : ks) expect_topk_matches_cpu(x, k, "masked");
    const Tensor all_masked =
        rows_of(1, n, dtype(), [](std::int64_t, std::int64_t) { return -inf; });
    for (const std::int64_t k : ks) expect_topk_matches_cpu(all_masked, k, "all -inf");
  }
}

// NaN, +inf, -inf, -0, +0 and a few finite values, mixed: NaNs lead (lower
// index first), then +inf; -0 and +0 tie.
TEST_P(CudaTopKRows, NaNInfinitiesAndSignedZerosMatchCpu) {
  SKIP_WITHOUT_GPU();
  const double specials[] = {nan, inf, -inf, 0.0, -0.0, -nan, 1.5, -1.5, 0.5};
  for (const std::int64_t n :
       {std::int64_t{9}, std::int64_t{1000}, std::int64_t{5000}, std::int64_t{70000}}) {
    const std::vector<double> picks =
        read_values(random_uniform({300, n}, DType::f64, 350 + n, 0.0, 9.0));
    const Tensor x = rows_of(300, n, dtype(), [&](std::int64_t r, std::int64_t i) {
      return specials[static_cast<int>(picks[r * n + i])];
    });
    for (const std::int64_t k : ks) {
      if (k <= n) expect_topk_matches_cpu(x, k, "specials");
    }
    // A few NaNs among normal values, and rows of zeros of both signs.
    const std::vector<double> normal = read_values(random_normal({3, n}, dtype(), 360 + n));
    const Tensor sparse_nan = rows_of(3, n, dtype(), [&](std::int64_t r, std::int64_t i) {
      return i % 997 == 13 ? nan : normal[r * n + i];
    });
    const Tensor zeros =
        rows_of(3, n, dtype(), [](std::int64_t, std::int64_t i) { return i % 3 ? -0.0 : 0.0; });
    for (const std::int64_t k : {std::int64_t{1}, std::min<std::int64_t>(n, 128)}) {
      expect_topk_matches_cpu(sparse_nan, k, "sparse NaN");
      expect_topk_matches_cpu(zeros, k, "signed zeros");
    }
  }
}

// Denormals of both signs and the extremes of the finite range.
TEST_P(CudaTopKRows, ExtremeMagnitudesMatchCpu) {
  SKIP_WITHOUT_GPU();
  const bool f32 = dtype() == DType::f32;
  const double tiny =
      f32 ? std::numeric_limits<float>::denorm_min() : std::numeric_limits<double>::denorm_min();
  const double huge = f32 ? std::numeric_limits<float>::max() : std::numeric_limits<double>::max();
  const double values[] = {tiny, -tiny, 3 * tiny, -3 * tiny, huge, -huge, 0.0, -0.0};
  for (const std::int64_t n : {std::int64_t{800}, std::int64_t{5000}}) {
    const Tensor x = rows_of(
        20, n, dtype(), [&](std::int64_t r, std::int64_t i) { return values[(i * 5 + r) % 8]; });
    for (const std::int64_t k : {std::int64_t{1}, std::int64_t{7}, std::int64_t{500}}) {
      expect_topk_matches_cpu(x, k, "extremes");
    }
  }
}

// Ascending rows make every element displace the CPU's current best; constant
// rows are one long tie.
TEST_P(CudaTopKRows, OrderedAndConstantRowsMatchCpu) {
  SKIP_WITHOUT_GPU();
  const std::int64_t n = 70000;
  const Tensor ascending = rows_of(2, n, dtype(), [](std::int64_t r, std::int64_t i) {
    return r == 0 ? double(i) : double(n - i);
  });
  const Tensor constant = rows_of(2, n, dtype(), [](std::int64_t, std::int64_t) { return 0.5; });
  for (const std::int64_t k : ks) {
    expect_topk_matches_cpu(ascending, k, "ascending and descending");
    expect_topk_matches_cpu(constant, k, "constant");
  }
}

// k beyond one sort of 1024 winners: selection in rounds.
TEST_P(CudaTopKRows, KAbove1024MatchesCpu) {
  SKIP_WITHOUT_GPU();
  const Tensor x = random_normal({30, 5000}, dtype(), 370);
  std::vector<double> values = read_values(random_uniform({30, 5000}, dtype(), 371, 0.0, 4.0));
  for (double& v : values) v = std::floor(v);
  const Tensor ties = tensor_of({30, 5000}, values, dtype());
  for (const std::int64_t k : {1025, 2048, 3000, 4999, 5000}) {
    expect_topk_matches_cpu(x, k, "random");
    expect_topk_matches_cpu(ties, k, "ties");
  }
  expect_topk_matches_cpu(random_normal({2, 70000}, dtype(), 372), 4096, "long rows");
}

TEST_P(CudaTopKRows, RowsOfARank3InputMatchCpu) {
  SKIP_WITHOUT_GPU();
  const Tensor x = random_normal({3, 4, 2000}, dtype(), 380);
  for (const std::int64_t k : {1, 7, 128}) expect_topk_matches_cpu(x, k, "rank 3");
  expect_topk_matches_cpu(random_normal({3, 4, 50}, dtype(), 381), 7, "rank 3");
}

TEST_P(CudaTopKRows, NoRowsIsANoOp) {
  SKIP_WITHOUT_GPU();
  const Tensor x = Tensor::empty({0, 5}, dtype(), gpu);
  const Tensor values = Tensor::empty({0, 3}, dtype(), gpu);
  const Tensor indices = Tensor::empty({0, 3}, DType::i32, gpu);
  run_and_synchronize([&] { gpu_kernels().topk_rows(x, 3, values, indices); });
}

TEST_P(CudaTopKRows, RejectsBadOperandsLikeCpu) {
  SKIP_WITHOUT_GPU();
  const Tensor x = on_gpu(random_normal({4, 10}, dtype(), 390));
  const Tensor values = Tensor::empty({4, 3}, dtype(), gpu);
  const Tensor indices = Tensor::empty({4, 3}, DType::i64, gpu);
  expect_error_containing(
      [&] {
        gpu_kernels().topk_rows(x, 3, Tensor::empty({4, 3}, dtype()), indices);
      },
      {"topk_rows", "cpu"});
  expect_error_containing([&] { gpu_kernels().topk_rows(x, 11, values, indices); },
                          {"topk_rows: k = 11 must be in [1, 10]"});
  expect_error_containing([&] { gpu_kernels().topk_rows(x, 0, values, indices); },
                          {"topk_rows: k = 0"});
  expect_error_containing([&] { gpu_kernels().topk_rows(x, 2, values, indices); },
                          {"topk_rows: values and indices must be [4, 2]"});
  expect_error_containing(
      [&] {
        gpu_kernels().topk_rows(x, 3, values, Tensor::empty({4, 3}, dtype(), gpu));
      },
      {"topk_rows: expected an i32 or i64 index tensor"});
  expect_error_containing([&] { gpu_kernels().topk_rows(x.transpose(0, 1), 3, values, indices); },
                          {"topk_rows: operands must be contiguous"});
}

INSTANTIATE_TEST_SUITE_P(Cuda, CudaTopKRows, floating_dtypes(), dtype_test_name);

}  // namespace
}  // namespace topkformer::testing
