// Row-wise top-k in O(n) per row, then a sort of the k winners only.
//
// One pass over the row appends the entries that beat a threshold to a
// buffer; whenever the buffer holds 4k entries, selection (introselect, O(k)
// expected) cuts it back to the best k and raises the threshold to the worst
// of those. Score rows are rejected almost entirely by the threshold, in
// blocks the compiler vectorises; even an ascending row costs O(1) amortised
// per entry (a cut every 3k appends).
#include "cpu_backend.h"
#include "dispatch.h"
#include "kernels/topk_rows_check.h"

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
bool better_with_nan(const Entry<T>& a, const Entry<T>& b) {
  const bool nan_a = std::isnan(a.value), nan_b = std::isnan(b.value);
  if (nan_a != nan_b) return nan_a;
  if (!nan_a && a.value != b.value) return a.value > b.value;
  return a.index < b.index;
}

// The same order for buffers known to hold no NaN.
template <typename T>
bool better(const Entry<T>& a, const Entry<T>& b) {
  return a.value > b.value || (a.value == b.value && a.index < b.index);
}

// True when some entry of row[begin, end) might pass `threshold` (is greater
// or NaN). Branch-free so that it vectorises.
template <typename T>
bool any_above(const T* row, std::int64_t begin, std::int64_t end, T threshold) {
  bool any = false;
  for (std::int64_t i = begin; i < end; ++i) any |= !(row[i] <= threshold);
  return any;
}

template <typename T>
class TopKSelector {
 public:
  explicit TopKSelector(std::int64_t k) : k_(k), capacity_(std::max<std::int64_t>(4 * k, 64)) {
    buffer_.reserve(capacity_);
  }

  // Leaves the k best entries of row[0, n) in entries(), best first.
  void select(const T* row, std::int64_t n) {
    buffer_.clear();
    has_nan_ = false;
    cut_ = false;
    std::int64_t i = 0;
    for (; i < n && !cut_; ++i) append(row[i], i);
    constexpr std::int64_t block = 16;
    while (i < n) {
      const std::int64_t end = std::min(n, i + block);
      if (any_above(row, i, end, threshold_)) {
        // An entry equal to the threshold ties the worst kept one and has a
        // higher index, so it loses: `<=` rejects it. NaN fails `<=`.
        for (; i < end; ++i) {
          if (!(row[i] <= threshold_)) append(row[i], i);
        }
      }
      i = end;
    }
    if (static_cast<std::int64_t>(buffer_.size()) > k_) keep_best(k_);
    has_nan_ ? std::sort(buffer_.begin(), buffer_.end(), better_with_nan<T>)
             : std::sort(buffer_.begin(), buffer_.end(), better<T>);
  }

  const std::vector<Entry<T>>& entries() const { return buffer_; }

 private:
  void append(T value, std::int64_t index) {
    has_nan_ = has_nan_ || std::isnan(value);
    buffer_.push_back({value, index});
    if (static_cast<std::int64_t>(buffer_.size()) == capacity_) {
      keep_best(k_);
      threshold_ = buffer_.back().value;  // the worst kept
      cut_ = true;
    }
  }

  // Keeps the best `count` entries (unordered, but the worst of them last).
  void keep_best(std::int64_t count) {
    const auto nth = buffer_.begin() + (count - 1);
    has_nan_ ? std::nth_element(buffer_.begin(), nth, buffer_.end(), better_with_nan<T>)
             : std::nth_element(buffer_.begin(), nth, buffer_.end(), better<T>);
    buffer_.resize(count);
  }

  std::int64_t k_, capacity_;
  std::vector<Entry<T>> buffer_;
  bool has_nan_ = false;
  bool cut_ = false;  // a threshold exists once the buffer has been cut
  T threshold_{};
};
}  // namespace

void CpuBackend::topk_rows(const Tensor& x, std::int64_t k, const Tensor& values,
                           const Tensor& indices) {
  check_topk_rows(x, k, values, indices);
  const std::int64_t n = x.size(-1);
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
        TopKSelector<T> selector(k);
        for (std::int64_t r = begin; r < end; ++r) {
          selector.select(in + r * n, n);
          const auto& best = selector.entries();
          for (std::int64_t j = 0; j < k; ++j) {
            top_values[r * k + j] = best[j].value;
            top_indices[r * k + j] = static_cast<I>(best[j].index);
          }
        }
      });
    });
  });
}

}  // namespace topkformer::kernels
