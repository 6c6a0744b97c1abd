// Row-wise top-k by selection: O(n) expected per row (introselect), then a
// sort of the k winners only.
#include <numeric>

#include "cpu_backend.h"
#include "dispatch.h"

namespace topkformer::kernels {

using namespace cpu;

void CpuBackend::topk_rows(const Tensor& x, std::int64_t k, const Tensor& values,
                           const Tensor& indices) {
  TKF_CHECK(x.is_contiguous() && values.is_contiguous() && indices.is_contiguous(),
            "topk_rows: operands must be contiguous");
  const std::int64_t n = x.size(-1);
  TKF_CHECK(1 <= k && k <= n, "topk_rows: k = ", k, " must be in [1, ", n, "] for rows of ",
            shape_str(x.shape()));
  // Indices may be i32: top-k attention keeps them for the backward pass, and
  // half the bytes matter there.
  dispatch_index(indices.dtype(), "topk_rows", [&](auto index_zero) {
    using I = decltype(index_zero);
    dispatch_floating(x.dtype(), "topk_rows", [&](auto zero) {
      using T = decltype(zero);
      const T* in = typed<T>(x);
      T* top_values = typed_mut<T>(values);
      I* top_indices = typed_mut<I>(indices);
      parallel_for(row_count(x), n * 4, [&](std::int64_t begin, std::int64_t end) {
        std::vector<std::int64_t> order(n);
        for (std::int64_t r = begin; r < end; ++r) {
          const T* row = in + r * n;
          // A strict order: larger first, NaN above everything, ties to the lower index.
          const auto before = [row](std::int64_t a, std::int64_t b) {
            const bool nan_a = std::isnan(row[a]), nan_b = std::isnan(row[b]);
            if (nan_a != nan_b) return nan_a;
            if (!nan_a && row[a] != row[b]) return row[a] > row[b];
            return a < b;
          };
          std::iota(order.begin(), order.end(), std::int64_t{0});
          if (k < n) std::nth_element(order.begin(), order.begin() + (k - 1), order.end(), before);
          std::sort(order.begin(), order.begin() + k, before);
          for (std::int64_t j = 0; j < k; ++j) {
            top_indices[r * k + j] = static_cast<I>(order[j]);
            top_values[r * k + j] = row[order[j]];
          }
        }
      });
    });
  });
}

}  // namespace topkformer::kernels
