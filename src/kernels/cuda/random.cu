// Philox random fills (uniform, normal) and dropout. Each element reads fixed
// words of the stream (seed, offset), computed with rng.h's own Philox (a
// constexpr function, so callable on the device), so that the GPU draws the
// same numbers as the CPU: uniforms and dropout masks bit for bit.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/launch.h"
#include "kernels/dispatch.h"
#include "kernels/random.h"
#include "topkformer/core/rng.h"

namespace topkformer::kernels {

namespace {

// Consecutive elements per thread: their words mostly share Philox blocks
// (four words each), which are computed once per block instead of once per
// word.
constexpr std::int64_t elements_per_thread = 4;

// Words of one stream, read in ascending runs: a block is computed when the
// next word leaves the one at hand.
class WordReader {
 public:
  __device__ explicit WordReader(std::uint64_t seed) : seed_(seed) {}

  __device__ std::uint32_t operator()(std::uint64_t n) {
    if (n / 4 != block_) {
      block_ = n / 4;
      words_ = philox_block(seed_, block_);
    }
    // Selected, not indexed: a runtime index would put the block in local memory.
    const std::uint64_t lane = n % 4;
    return lane == 0 ? words_[0] : lane == 1 ? words_[1] : lane == 2 ? words_[2] : words_[3];
  }

 private:
  std::uint64_t seed_;
  std::uint64_t block_ = ~std::uint64_t{0};  // no block yet (blocks are below 2^62)
  PhiloxCounter words_{};
};

// Calls body(e, words) for each element e in [0, count), with `words` its
// WordsPerElement words: state.offset + e * WordsPerElement + w, as the CPU's
// for_each_random_element addresses them.
template <int WordsPerElement, typename Body>
__global__ void random_fill_kernel(std::int64_t count, PhiloxState state, Body body) {
  const std::int64_t groups = (count + elements_per_thread - 1) / elements_per_thread;
  const std::int64_t step = std::int64_t(gridDim.x) * blockDim.x;
  WordReader read(state.seed);
  for (std::int64_t group = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; group < groups;
       group += step) {
    const std::int64_t end = std::min(count, (group + 1) * elements_per_thread);
    for (std::int64_t e = group * elements_per_thread; e < end; ++e) {
      const std::uint64_t first = state.offset + std::uint64_t(e) * WordsPerElement;
      std::uint32_t words[WordsPerElement];
      for (int w = 0; w < WordsPerElement; ++w) words[w] = read(first + w);
      body(e, words);
    }
  }
}

// low + (high - low) * u with one rounding: the CPU build contracts that
// expression into a fused multiply-add (GCC on x86-64-v3), so this is the
// same double, and the same float after the cast.
struct UniformF32 {
  float* out;
  double low, width;
  __device__ void operator()(std::int64_t e, const std::uint32_t (&words)[1]) const {
    out[e] = static_cast<float>(fma(width, double(uniform_f32(words[0])), low));
  }
};

struct UniformF64 {
  double* out;
  double low, width;
  __device__ void operator()(std::int64_t e, const std::uint32_t (&words)[2]) const {
    out[e] = fma(width, uniform_f64(words[0], words[1]), low);
  }
};

// mean + std * normal_from_words(words) (rng.h): the same uniforms, and the
// same formula in double with the device's log and cos, which are within 2
// ulp of the host's: the result agrees to a few ulp of double (f64) and
// almost always exactly after rounding to f32.
template <typename T>
struct Normal {
  T* out;
  double mean, sigma;
  __device__ void operator()(std::int64_t e, const std::uint32_t (&words)[2]) const {
    const double u1 = double((words[0] >> 8) + 1) * 0x1p-24;
    const double u2 = double(words[1] >> 8) * 0x1p-24;
    const double z = ::sqrt(-2.0 * ::log(u1)) * ::cos(6.283185307179586 * u2);
    out[e] = static_cast<T>(fma(sigma, z, mean));
  }
};

template <int WordsPerElement, typename Body>
void launch_random_fill(const Tensor& dst, PhiloxState state, const Body& body,
                        const cuda::Launch& launch) {
  const std::int64_t count = dst.numel();
  if (count == 0) return;
  const std::int64_t groups = (count + elements_per_thread - 1) / elements_per_thread;
  random_fill_kernel<WordsPerElement>
      <<<cuda::grid_for(groups), cuda::threads_per_block, 0, launch.stream()>>>(count, state, body);
  TKF_CUDA_CHECK_LAUNCH();
}

// DropoutAddressing without its columns, as a kernel argument.
struct RowAddressing {
  std::int64_t rows_per_block, block_stride, first_row, row_words;
  // DropoutAddressing::global_row.
  __device__ std::int64_t global_row(std::int64_t r) const {
    if (rows_per_block == 0) return r;
    return (r / rows_per_block) * block_stride + first_row + r % rows_per_block;
  }
};

// Element e = (r, c) of x seen as rows of n reads word
// state.offset + global_row(r) * row_words + (columns ? columns[e] : c), in
// the CPU's unsigned arithmetic. Without columns, a thread's consecutive
// elements read consecutive words.
template <typename T, typename Column>
__global__ void dropout_kernel(const T* x, T* out, std::int64_t count, std::int64_t n,
                               RowAddressing rows, const Column* columns, PhiloxState state,
                               std::uint32_t threshold, T keep_scale) {
  const std::int64_t groups = (count + elements_per_thread - 1) / elements_per_thread;
  const std::int64_t step = std::int64_t(gridDim.x) * blockDim.x;
  WordReader read(state.seed);
  for (std::int64_t group = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; group < groups;
       group += step) {
    const std::int64_t begin = group * elements_per_thread;
    const std::int64_t end = std::min(count, begin + elements_per_thread);
    std::int64_t r = begin / n;
    std::int64_t c = begin - r * n;
    std::uint64_t row_start = state.offset + rows.global_row(r) * rows.row_words;
    for (std::int64_t e = begin; e < end; ++e) {
      const std::int64_t column = columns != nullptr ? std::int64_t(columns[e]) : c;
      const std::uint32_t word = read(row_start + column);
      out[e] = (word >> 8) >= threshold ? x[e] * keep_scale : T(0);
      if (++c == n) {
        c = 0;
        ++r;
        row_start = state.offset + rows.global_row(r) * rows.row_words;
      }
    }
  }
}

}  // namespace

void CudaBackend::uniform(const Tensor& dst, PhiloxState state, double low, double high) {
  TKF_CHECK(dst.is_contiguous(), "uniform: destination must be contiguous");
  const cuda::Launch launch(dst, {}, "uniform");
  if (dst.dtype() == DType::f32) {
    launch_random_fill<words_per_uniform_f32>(
        dst, state, UniformF32{typed_mut<float>(dst), low, high - low}, launch);
  } else {
    dst.check_dtype(DType::f64, "uniform");
    launch_random_fill<words_per_uniform_f64>(
        dst, state, UniformF64{typed_mut<double>(dst), low, high - low}, launch);
  }
}

void CudaBackend::normal(const Tensor& dst, PhiloxState state, double mean, double std) {
  TKF_CHECK(dst.is_contiguous(), "normal: destination must be contiguous");
  const cuda::Launch launch(dst, {}, "normal");
  dispatch_floating(dst.dtype(), "normal", [&](auto zero) {
    using T = decltype(zero);
    launch_random_fill<words_per_normal>(dst, state, Normal<T>{typed_mut<T>(dst), mean, std},
                                         launch);
  });
}

void CudaBackend::dropout(const Tensor& x, double p, PhiloxState state,
                          const DropoutAddressing& addressing, const Tensor& out) {
  const DropoutPlan plan = check_dropout(x, p, addressing, out);
  const cuda::Launch launch(out, {&x, &addressing.columns}, "dropout");
  const std::int64_t count = x.numel();
  if (count == 0) return;
  const RowAddressing rows{addressing.rows_per_block, addressing.block_stride, addressing.first_row,
                           plan.row_words};
  const unsigned blocks = cuda::grid_for((count + elements_per_thread - 1) / elements_per_thread);
  dispatch_floating(x.dtype(), "dropout", [&](auto zero) {
    using T = decltype(zero);
    const T keep_scale = static_cast<T>(1.0 / (1.0 - p));
    const auto run = [&](const auto* columns) {
      dropout_kernel<<<blocks, cuda::threads_per_block, 0, launch.stream()>>>(
          typed<T>(x), typed_mut<T>(out), count, plan.n, rows, columns, state, plan.threshold,
          keep_scale);
      TKF_CUDA_CHECK_LAUNCH();
    };
    if (!addressing.columns.defined()) return run(static_cast<const std::int64_t*>(nullptr));
    const Tensor columns = addressing.columns.contiguous();
    dispatch_index(columns.dtype(), "dropout columns",
                   [&](auto index_zero) { run(typed<decltype(index_zero)>(columns)); });
  });
}

}  // namespace topkformer::kernels
