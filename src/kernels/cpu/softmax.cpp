// Row softmax and log-softmax with causal and key-padding masks.
#include <limits>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/vector_math.h"
#include "kernels/softmax.h"

namespace topkformer::kernels::cpu {

namespace {
// The valid prefix of each row (kernels/softmax.h), with key_lengths read on the host.
class ValidPrefix {
 public:
  ValidPrefix(const Tensor& x, const RowMask& mask, const char* op)
      : rule_(row_mask_rule(x, mask, op)) {
    if (mask.key_lengths.defined()) {
      TKF_CHECK(mask.key_lengths.device().is_cpu(), op, ": key_lengths must be on the CPU");
      lengths_ = mask.key_lengths.to(DType::i64).contiguous().to_vector<std::int64_t>();
    }
  }
  std::int64_t operator()(std::int64_t row) const {
    return rule_.valid_prefix(row, lengths_.empty() ? rule_.keys : lengths_[rule_.item(row)]);
  }

 private:
  RowMaskRule rule_;
  std::vector<std::int64_t> lengths_;
};
}  // namespace

void CpuBackend::softmax(const Tensor& x, const RowMask& mask, bool log, const Tensor& out) {
  TKF_CHECK(x.is_contiguous() && out.is_contiguous(), "softmax: operands must be contiguous");
  check_same_shape(x, out, "softmax");
  if (x.numel() == 0) return;
  const ValidPrefix valid_prefix(x, mask, "softmax");
  const std::int64_t n = x.size(-1);
  dispatch_floating(x.dtype(), "softmax", [&](auto zero) {
    using T = decltype(zero);
    const T* in = typed<T>(x);
    T* result = typed_mut<T>(out);
    const T masked = log ? -std::numeric_limits<T>::infinity() : T(0);
    parallel_for(row_count(x), n * 8, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t r = begin; r < end; ++r) {
        const T* row = in + r * n;
        T* y = result + r * n;
        const std::int64_t valid = valid_prefix(r);
        for (std::int64_t j = valid; j < n; ++j) y[j] = masked;
        if (valid == 0) continue;
        T max_value = row[0];
#pragma omp simd reduction(max : max_value)
        for (std::int64_t j = 1; j < valid; ++j) max_value = std::max(max_value, row[j]);
        if (std::isinf(max_value) && max_value < 0) {  // every entry already -inf: masked
          for (std::int64_t j = 0; j < valid; ++j) y[j] = masked;
          continue;
        }
        T total = 0;
#pragma omp simd reduction(+ : total)
        for (std::int64_t j = 0; j < valid; ++j) {
          y[j] = vector_exp(row[j] - max_value);
          total += y[j];
        }
        if (log) {
          const T log_total = std::log(total) + max_value;
          for (std::int64_t j = 0; j < valid; ++j) y[j] = row[j] - log_total;
        } else {
          const T inverse = T(1) / total;
          for (std::int64_t j = 0; j < valid; ++j) y[j] *= inverse;
        }
      }
    });
  });
}

void CpuBackend::fill_masked(const Tensor& x, const RowMask& mask, double value) {
  TKF_CHECK(x.is_contiguous(), "fill_masked: the tensor must be contiguous");
  if (x.numel() == 0 || mask.empty()) return;
  const ValidPrefix valid_prefix(x, mask, "fill_masked");
  const std::int64_t n = x.size(-1);
  dispatch_floating(x.dtype(), "fill_masked", [&](auto zero) {
    using T = decltype(zero);
    T* data = typed_mut<T>(x);
    const T filler = static_cast<T>(value);
    parallel_for(row_count(x), n, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t r = begin; r < end; ++r) {
        std::fill(data + r * n + valid_prefix(r), data + (r + 1) * n, filler);
      }
    });
  });
}

void CpuBackend::softmax_backward(const Tensor& y, const Tensor& dy, bool log, const Tensor& dx) {
  TKF_CHECK(y.is_contiguous() && dy.is_contiguous() && dx.is_contiguous(),
            "softmax_backward: operands must be contiguous");
  check_same_shape(y, dy, "softmax_backward");
  if (y.numel() == 0) return;
  const std::int64_t n = y.size(-1);
  dispatch_floating(y.dtype(), "softmax_backward", [&](auto zero) {
    using T = decltype(zero);
    const T* out = typed<T>(y);
    const T* grad = typed<T>(dy);
    T* result = typed_mut<T>(dx);
    parallel_for(row_count(y), n * 4, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t r = begin; r < end; ++r) {
        const T* yr = out + r * n;
        const T* gr = grad + r * n;
        T* dr = result + r * n;
        if (log) {
          // Masked entries hold -inf: they take no part and get no gradient.
          T total = 0;
          for (std::int64_t j = 0; j < n; ++j) {
            if (!std::isinf(yr[j])) total += gr[j];
          }
          for (std::int64_t j = 0; j < n; ++j) {
            dr[j] = std::isinf(yr[j]) ? T(0) : gr[j] - std::exp(yr[j]) * total;
          }
        } else {
          T dot = 0;
          for (std::int64_t j = 0; j < n; ++j) dot += gr[j] * yr[j];
          for (std::int64_t j = 0; j < n; ++j) dr[j] = yr[j] * (gr[j] - dot);
        }
      }
    });
  });
}

}  // namespace topkformer::kernels::cpu
