// Fused log-softmax + negative log-likelihood with label smoothing.
#include "kernels/cross_entropy.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/vector_math.h"

namespace topkformer::kernels::cpu {

void CpuBackend::cross_entropy(const Tensor& logits, const Tensor& targets,
                               std::int64_t ignore_index, double smoothing, const Tensor& losses,
                               const Tensor& logsumexp) {
  check_cross_entropy_inputs(logits, targets, "cross_entropy");
  const std::int64_t rows = logits.size(0), classes = logits.size(1);
  dispatch_index(targets.dtype(), "cross_entropy", [&](auto index_zero) {
    using I = decltype(index_zero);
    const I* target = typed<I>(targets);
    for (std::int64_t r = 0; r < rows; ++r) {
      check_cross_entropy_target(static_cast<std::int64_t>(target[r]), r, classes, ignore_index);
    }
    dispatch_floating(logits.dtype(), "cross_entropy", [&](auto zero) {
      using T = decltype(zero);
      const T* in = typed<T>(logits);
      T* loss = typed_mut<T>(losses);
      T* lse = typed_mut<T>(logsumexp);
      parallel_for(rows, classes * 4, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t r = begin; r < end; ++r) {
          const T* row = in + r * classes;
          T max_value = row[0];
#pragma omp simd reduction(max : max_value)
          for (std::int64_t c = 1; c < classes; ++c) max_value = std::max(max_value, row[c]);
          // Vector sums over blocks of 512 classes, added up in double: the f32 lanes
          // never hold more than 64 terms, and the loop keeps its 8-lane exp.
          constexpr std::int64_t block = 512;
          double total = 0.0, sum_logits = 0.0;
          for (std::int64_t start = 0; start < classes; start += block) {
            const std::int64_t stop = std::min(classes, start + block);
            T block_total = 0, block_logits = 0;
#pragma omp simd reduction(+ : block_total, block_logits)
            for (std::int64_t c = start; c < stop; ++c) {
              block_total += vector_exp(row[c] - max_value);
              block_logits += row[c];
            }
            total += double(block_total);
            sum_logits += double(block_logits);
          }
          const double log_normalizer = std::log(total) + max_value;
          lse[r] = static_cast<T>(log_normalizer);
          const std::int64_t t = static_cast<std::int64_t>(target[r]);
          if (t == ignore_index) {
            loss[r] = 0;
            continue;
          }
          // -sum_c q_c (x_c - lse) with q = (1 - s) onehot(t) + s / C.
          const double picked =
              (1.0 - smoothing) * row[t] + smoothing * sum_logits / double(classes);
          loss[r] = static_cast<T>(log_normalizer - picked);
        }
      });
    });
  });
}

void CpuBackend::cross_entropy_backward(const Tensor& logits, const Tensor& targets,
                                        const Tensor& logsumexp, std::int64_t ignore_index,
                                        double smoothing, double scale, const Tensor& dlogits) {
  const std::int64_t rows = logits.size(0), classes = logits.size(1);
  dispatch_index(targets.dtype(), "cross_entropy_backward", [&](auto index_zero) {
    using I = decltype(index_zero);
    const I* target = typed<I>(targets);
    dispatch_floating(logits.dtype(), "cross_entropy_backward", [&](auto zero) {
      using T = decltype(zero);
      const T* in = typed<T>(logits);
      const T* lse = typed<T>(logsumexp);
      T* out = typed_mut<T>(dlogits);
      const T uniform_share = static_cast<T>(smoothing / double(classes));
      parallel_for(rows, classes * 4, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t r = begin; r < end; ++r) {
          T* grad = out + r * classes;
          const auto t = static_cast<std::int64_t>(target[r]);
          if (t == ignore_index) {
            std::fill(grad, grad + classes, T(0));
            continue;
          }
          const T* row = in + r * classes;
          const T row_lse = lse[r], row_scale = static_cast<T>(scale);
#pragma omp simd
          for (std::int64_t c = 0; c < classes; ++c) {
            grad[c] = row_scale * (vector_exp(row[c] - row_lse) - uniform_share);
          }
          grad[t] -= static_cast<T>(scale * (1.0 - smoothing));
        }
      });
    });
  });
}

}  // namespace topkformer::kernels::cpu
