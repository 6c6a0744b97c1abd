// Row-wise top-k in O(n) per row, then a sort of the k winners only.
//
// A k-entry heap of the best entries so far rejects almost every entry with a
// single comparison against its worst, which is the fast path for score rows.
// Rows that keep displacing heap entries (ascending data) switch to
// selection (introselect, O(n) expected) so the heap's O(n log k) never shows.
#include "cpu_backend.h"
#include "dispatch.h"

namespace topkformer::kernels {

using namespace cpu;

namespace {
template <typename T>
struct Entry {
  T value;
  std::int64_t index;
};

// A strict order: larger first, NaN above everything, ties to the lower index.
template <typename T>
bool better(const Entry<T>& a, const Entry<T>& b) {
  const bool nan_a = std::isnan(a.value), nan_b = std::isnan(b.value);
  if (nan_a != nan_b) return nan_a;
  if (!nan_a && a.value != b.value) return a.value > b.value;
  return a.index < b.index;
}

// Leaves the k best entries of row[0, n) in `heap`, best first.
template <typename T>
void select_top_k(const T* row, std::int64_t n, std::int64_t k, std::vector<Entry<T>>& heap) {
  heap.clear();
  for (std::int64_t i = 0; i < k; ++i) heap.push_back({row[i], i});
  // With `better` as the heap's "less", the front is the worst entry kept.
  std::make_heap(heap.begin(), heap.end(), better<T>);
  const std::int64_t replacement_budget = n / 16 + 64;
  std::int64_t replacements = 0;
  for (std::int64_t i = k; i < n; ++i) {
    // A later entry that merely ties the worst kept one loses (higher index),
    // so `<=` rejects it; NaN fails `<=` and takes the careful path.
    if (row[i] <= heap.front().value) continue;
    const Entry<T> candidate{row[i], i};
    if (!better(candidate, heap.front())) continue;
    if (++replacements > replacement_budget) {  // adversarial order: select instead
      heap.clear();
      for (std::int64_t j = 0; j < n; ++j) heap.push_back({row[j], j});
      std::nth_element(heap.begin(), heap.begin() + (k - 1), heap.end(), better<T>);
      heap.resize(k);
      std::sort(heap.begin(), heap.end(), better<T>);
      return;
    }
    std::pop_heap(heap.begin(), heap.end(), better<T>);
    heap.back() = candidate;
    std::push_heap(heap.begin(), heap.end(), better<T>);
  }
  std::sort_heap(heap.begin(), heap.end(), better<T>);
}
}  // namespace

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
      parallel_for(row_count(x), n * 2, [&](std::int64_t begin, std::int64_t end) {
        std::vector<Entry<T>> heap;
        heap.reserve(k);
        for (std::int64_t r = begin; r < end; ++r) {
          select_top_k(in + r * n, n, k, heap);
          for (std::int64_t j = 0; j < k; ++j) {
            top_values[r * k + j] = heap[j].value;
            top_indices[r * k + j] = static_cast<I>(heap[j].index);
          }
        }
      });
    });
  });
}

}  // namespace topkformer::kernels
