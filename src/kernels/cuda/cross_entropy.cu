// Fused log-softmax + negative log-likelihood with label smoothing. Rows are
// vocabulary-sized (16K-270K classes): a block of 512 threads per row, which
// finds the maximum, the sum of exponentials and the sum of logits in one
// online pass (a warp per row for rows of up to 1024 classes).
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cross_entropy.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/row_reduce.cuh"
#include "kernels/dispatch.h"

namespace topkformer::kernels {

namespace {

using namespace cuda::row_reduce;

constexpr int long_row_threads = 512;

// The sums run in double, as on the CPU: a thread adds up hundreds of terms.
// A target outside [0, C) that is not ignore_index leaves its loss unwritten
// and raises *first_bad to rows - row: the largest value marks the first such
// row, whatever order the blocks run in.
template <typename T, typename I, typename Rows>
__global__ void cross_entropy_kernel(const T* logits, const I* targets, std::int64_t rows,
                                     std::int64_t classes, std::int64_t ignore_index,
                                     double smoothing, T* losses, T* logsumexp,
                                     unsigned long long* first_bad) {
  const Rows group;
  for (std::int64_t row = group.first_row(); row < rows; row += group.row_stride()) {
    const T* in = logits + row * classes;
    auto stats = empty_max_sum<T, double>();
    double sum_logits = 0.0;
    for (std::int64_t c = group.rank(); c < classes; c += Rows::size) {
      const T value = in[c];
      stats = add_value(stats, value);
      sum_logits += double(value);
    }
    stats = group.combine(stats, MergeMaxSum{});
    sum_logits = group.combine(sum_logits, Sum{});
    if (group.rank() != 0) continue;
    const double log_normalizer = log(stats.sum) + double(stats.max);
    logsumexp[row] = static_cast<T>(log_normalizer);
    const auto target = static_cast<std::int64_t>(targets[row]);
    if (target == ignore_index) {
      losses[row] = T(0);
    } else if (target < 0 || target >= classes) {
      atomicMax(first_bad, static_cast<unsigned long long>(rows - row));
    } else {
      // -sum_c q_c (x_c - lse) with q = (1 - s) onehot(t) + s / C.
      const double picked =
          (1.0 - smoothing) * double(in[target]) + smoothing * sum_logits / double(classes);
      losses[row] = static_cast<T>(log_normalizer - picked);
    }
  }
}

template <typename T, typename I, typename Rows>
__global__ void cross_entropy_backward_kernel(const T* logits, const I* targets, const T* logsumexp,
                                              std::int64_t rows, std::int64_t classes,
                                              std::int64_t ignore_index, T scale, T uniform_share,
                                              T target_share, T* dlogits) {
  const Rows group;
  for (std::int64_t row = group.first_row(); row < rows; row += group.row_stride()) {
    T* grad = dlogits + row * classes;
    const auto target = static_cast<std::int64_t>(targets[row]);
    if (target == ignore_index) {
      for (std::int64_t c = group.rank(); c < classes; c += Rows::size) grad[c] = T(0);
      continue;
    }
    const T* in = logits + row * classes;
    const T lse = logsumexp[row];
    for (std::int64_t c = group.rank(); c < classes; c += Rows::size) {
      T value = scale * (exp_of(in[c] - lse) - uniform_share);
      if (c == target) value -= target_share;
      grad[c] = value;
    }
  }
}

void check_row_values(const Tensor& logits, const Tensor& values, const char* op,
                      const char* name) {
  TKF_CHECK(values.is_contiguous() && values.numel() == logits.size(0), op, ": ", name,
            " must be contiguous with ", logits.size(0), " elements, got ",
            shape_str(values.shape()));
  check_same_dtype(logits, values, op);
}

}  // namespace

void CudaBackend::cross_entropy(const Tensor& logits, const Tensor& targets,
                                std::int64_t ignore_index, double smoothing, const Tensor& losses,
                                const Tensor& logsumexp) {
  check_cross_entropy_inputs(logits, targets, "cross_entropy");
  check_row_values(logits, losses, "cross_entropy", "losses");
  check_row_values(logits, logsumexp, "cross_entropy", "logsumexp");
  const cuda::Launch launch(logits, {&targets, &losses, &logsumexp}, "cross_entropy");
  const std::int64_t rows = logits.size(0), classes = logits.size(1);
  if (rows == 0) return;
  const Tensor first_bad = Tensor::empty({1}, DType::i64, logits.device());
  auto* first_bad_flag = static_cast<unsigned long long*>(first_bad.raw_data());
  TKF_CUDA_CHECK(cudaMemsetAsync(first_bad_flag, 0, sizeof(unsigned long long), launch.stream()));
  dispatch_index(targets.dtype(), "cross_entropy", [&](auto index_zero) {
    using I = decltype(index_zero);
    dispatch_floating(logits.dtype(), "cross_entropy", [&](auto zero) {
      using T = decltype(zero);
      with_rows_mapping<long_row_threads>(classes, [&](auto mapping) {
        using Rows = decltype(mapping);
        cross_entropy_kernel<T, I, Rows>
            <<<rows_grid<Rows>(rows), Rows::threads, 0, launch.stream()>>>(
                typed<T>(logits), typed<I>(targets), rows, classes, ignore_index, smoothing,
                typed_mut<T>(losses), typed_mut<T>(logsumexp), first_bad_flag);
        TKF_CUDA_CHECK_LAUNCH();
      });
    });
  });
  // A bad target must throw, like on the CPU, so the flag is read back: this
  // waits for the kernel. Once per loss that costs little, and the op layer
  // (ops::cross_entropy) reads the targets on the host anyway.
  const std::int64_t flag = first_bad.to_vector<std::int64_t>()[0];
  if (flag != 0) {
    const std::int64_t row = rows - flag;
    const std::int64_t target =
        targets.narrow(0, row, 1).to(DType::i64).to_vector<std::int64_t>()[0];
    check_cross_entropy_target(target, row, classes, ignore_index);
  }
}

void CudaBackend::cross_entropy_backward(const Tensor& logits, const Tensor& targets,
                                         const Tensor& logsumexp, std::int64_t ignore_index,
                                         double smoothing, double scale, const Tensor& dlogits) {
  check_cross_entropy_inputs(logits, targets, "cross_entropy_backward");
  check_row_values(logits, logsumexp, "cross_entropy_backward", "logsumexp");
  TKF_CHECK(dlogits.is_contiguous(), "cross_entropy_backward: dlogits must be contiguous");
  check_same_shape(logits, dlogits, "cross_entropy_backward");
  check_same_dtype(logits, dlogits, "cross_entropy_backward");
  const cuda::Launch launch(dlogits, {&logits, &targets, &logsumexp}, "cross_entropy_backward");
  const std::int64_t rows = logits.size(0), classes = logits.size(1);
  if (rows == 0 || classes == 0) return;
  dispatch_index(targets.dtype(), "cross_entropy_backward", [&](auto index_zero) {
    using I = decltype(index_zero);
    dispatch_floating(logits.dtype(), "cross_entropy_backward", [&](auto zero) {
      using T = decltype(zero);
      with_rows_mapping<long_row_threads>(classes, [&](auto mapping) {
        using Rows = decltype(mapping);
        cross_entropy_backward_kernel<T, I, Rows>
            <<<rows_grid<Rows>(rows), Rows::threads, 0, launch.stream()>>>(
                typed<T>(logits), typed<I>(targets), typed<T>(logsumexp), rows, classes,
                ignore_index, static_cast<T>(scale), static_cast<T>(smoothing / double(classes)),
                static_cast<T>(scale * (1.0 - smoothing)), typed_mut<T>(dlogits));
        TKF_CUDA_CHECK_LAUNCH();
      });
    });
  });
}

}  // namespace topkformer::kernels
