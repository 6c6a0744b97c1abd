// Row softmax and log-softmax with causal and key-padding masks, their
// backward pass, and fill_masked. A warp per row up to 1024 entries, a block
// per row beyond (row_reduce.cuh); the forward finds max and sum in one
// online pass, then writes the row.
#include <cstdint>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/row_reduce.cuh"
#include "kernels/dispatch.h"
#include "kernels/softmax.h"

namespace topkformer::kernels {

namespace {

using namespace cuda::row_reduce;

constexpr int long_row_threads = 256;

// The valid prefix of a row; key_lengths is null without a padding mask.
__device__ std::int64_t valid_prefix(const RowMaskRule& rule, const std::int64_t* key_lengths,
                                     std::int64_t row) {
  return rule.valid_prefix(row, key_lengths != nullptr ? key_lengths[rule.item(row)] : rule.keys);
}

template <typename T>
__device__ bool is_infinite(T x) {
  return x == minus_infinity<T>() || x == -minus_infinity<T>();
}

template <typename T, typename Rows>
__global__ void softmax_kernel(const T* x, T* y, std::int64_t rows, RowMaskRule rule,
                               const std::int64_t* key_lengths, bool log) {
  const Rows group;
  const std::int64_t n = rule.keys;
  const T masked = log ? minus_infinity<T>() : T(0);
  for (std::int64_t row = group.first_row(); row < rows; row += group.row_stride()) {
    const T* in = x + row * n;
    T* out = y + row * n;
    const std::int64_t valid = valid_prefix(rule, key_lengths, row);
    auto stats = empty_max_sum<T, T>();
    for (std::int64_t j = group.rank(); j < valid; j += Rows::size) {
      stats = add_value(stats, in[j]);
    }
    stats = group.combine(stats, MergeMaxSum{});
    // Valid entries that are all -inf leave the row as masked as no entries do.
    const bool empty = stats.max == minus_infinity<T>();
    const T log_total = log_of(stats.sum) + stats.max;
    const T inverse = T(1) / stats.sum;
    for (std::int64_t j = group.rank(); j < n; j += Rows::size) {
      T value = masked;
      if (j < valid && !empty) {
        value = log ? in[j] - log_total : exp_of(in[j] - stats.max) * inverse;
      }
      out[j] = value;
    }
  }
}

// Log-softmax outputs of -inf are masked entries: they take no part in the
// sum and get no gradient (as on the CPU).
template <typename T, typename Rows>
__global__ void softmax_backward_kernel(const T* y, const T* dy, T* dx, std::int64_t rows,
                                        std::int64_t n, bool log) {
  const Rows group;
  for (std::int64_t row = group.first_row(); row < rows; row += group.row_stride()) {
    const T* yr = y + row * n;
    const T* gr = dy + row * n;
    T* dr = dx + row * n;
    T total = 0;
    for (std::int64_t j = group.rank(); j < n; j += Rows::size) {
      if (log) {
        if (!is_infinite(yr[j])) total += gr[j];
      } else {
        total += gr[j] * yr[j];
      }
    }
    total = group.combine(total, Sum{});
    for (std::int64_t j = group.rank(); j < n; j += Rows::size) {
      if (log) {
        dr[j] = is_infinite(yr[j]) ? T(0) : gr[j] - exp_of(yr[j]) * total;
      } else {
        dr[j] = yr[j] * (gr[j] - total);
      }
    }
  }
}

template <typename T, typename Rows>
__global__ void fill_masked_kernel(T* x, std::int64_t rows, RowMaskRule rule,
                                   const std::int64_t* key_lengths, T value) {
  const Rows group;
  const std::int64_t n = rule.keys;
  for (std::int64_t row = group.first_row(); row < rows; row += group.row_stride()) {
    T* data = x + row * n;
    for (std::int64_t j = valid_prefix(rule, key_lengths, row) + group.rank(); j < n;
         j += Rows::size) {
      data[j] = value;
    }
  }
}

// key_lengths as contiguous i64 on the scores' device, or undefined without a
// padding mask. The rule: the CPU backend wants them on the CPU, and the
// attention layers keep them there (AttentionContext), so the CUDA backend
// takes them on the CPU or on a GPU. On the scores' GPU they are used as they
// are (an i32 tensor is widened by a kernel on the stream); from elsewhere
// they are copied over, which from the host is a synchronous copy of B
// integers: a caller on a hot path should move them to the GPU once.
Tensor device_key_lengths(const RowMask& mask, Device device) {
  if (!mask.key_lengths.defined()) return {};
  return mask.key_lengths.to(device).to(DType::i64).contiguous();
}

const std::int64_t* lengths_pointer(const Tensor& lengths) {
  return lengths.defined() ? typed<std::int64_t>(lengths) : nullptr;
}

}  // namespace

void CudaBackend::softmax(const Tensor& x, const RowMask& mask, bool log, const Tensor& out) {
  TKF_CHECK(x.is_contiguous() && out.is_contiguous(), "softmax: operands must be contiguous");
  check_same_shape(x, out, "softmax");
  check_same_dtype(x, out, "softmax");
  const cuda::Launch launch(out, {&x}, "softmax");
  if (x.numel() == 0) return;
  const RowMaskRule rule = row_mask_rule(x, mask, "softmax");
  const Tensor lengths = device_key_lengths(mask, x.device());
  const std::int64_t rows = row_count(x);
  dispatch_floating(x.dtype(), "softmax", [&](auto zero) {
    using T = decltype(zero);
    with_rows_mapping<long_row_threads>(rule.keys, [&](auto mapping) {
      using Rows = decltype(mapping);
      softmax_kernel<T, Rows><<<rows_grid<Rows>(rows), Rows::threads, 0, launch.stream()>>>(
          typed<T>(x), typed_mut<T>(out), rows, rule, lengths_pointer(lengths), log);
      TKF_CUDA_CHECK_LAUNCH();
    });
  });
}

void CudaBackend::softmax_backward(const Tensor& y, const Tensor& dy, bool log, const Tensor& dx) {
  TKF_CHECK(y.is_contiguous() && dy.is_contiguous() && dx.is_contiguous(),
            "softmax_backward: operands must be contiguous");
  check_same_shape(y, dy, "softmax_backward");
  check_same_shape(y, dx, "softmax_backward");
  check_same_dtype(y, dy, "softmax_backward");
  check_same_dtype(y, dx, "softmax_backward");
  const cuda::Launch launch(dx, {&y, &dy}, "softmax_backward");
  if (y.numel() == 0) return;
  const std::int64_t rows = row_count(y), n = y.size(-1);
  dispatch_floating(y.dtype(), "softmax_backward", [&](auto zero) {
    using T = decltype(zero);
    with_rows_mapping<long_row_threads>(n, [&](auto mapping) {
      using Rows = decltype(mapping);
      softmax_backward_kernel<T, Rows>
          <<<rows_grid<Rows>(rows), Rows::threads, 0, launch.stream()>>>(
              typed<T>(y), typed<T>(dy), typed_mut<T>(dx), rows, n, log);
      TKF_CUDA_CHECK_LAUNCH();
    });
  });
}

void CudaBackend::fill_masked(const Tensor& x, const RowMask& mask, double value) {
  TKF_CHECK(x.is_contiguous(), "fill_masked: the tensor must be contiguous");
  const cuda::Launch launch(x, {}, "fill_masked");
  if (x.numel() == 0 || mask.empty()) return;
  const RowMaskRule rule = row_mask_rule(x, mask, "fill_masked");
  const Tensor lengths = device_key_lengths(mask, x.device());
  const std::int64_t rows = row_count(x);
  dispatch_floating(x.dtype(), "fill_masked", [&](auto zero) {
    using T = decltype(zero);
    with_rows_mapping<long_row_threads>(rule.keys, [&](auto mapping) {
      using Rows = decltype(mapping);
      fill_masked_kernel<T, Rows><<<rows_grid<Rows>(rows), Rows::threads, 0, launch.stream()>>>(
          typed_mut<T>(x), rows, rule, lengths_pointer(lengths), static_cast<T>(value));
      TKF_CUDA_CHECK_LAUNCH();
    });
  });
}

}  // namespace topkformer::kernels
