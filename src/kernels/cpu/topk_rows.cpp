// Row-wise top-k in O(n) per row, then a sort of the k winners only.
// See Note [CPU top-k selection].
#include <bit>
#include <cmath>
#include <limits>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/parallel.h"
#include "kernels/topk_rows.h"

// Note [CPU top-k selection]
// Entries live in a buffer as single unsigned integers, an entry's order key
// (see Note [top-k order] in kernels/topk_rows.h) above its reversed index, so
// that selection (introselect, O(size) expected) and the final sort compare
// integers in the order of the GPU's kernel; values are read back from the row, with their own
// NaN payload and zero sign. Which entries reach the buffer depends on k / n:
//
// - Short rows (n <= 4k): all of them.
// - k a sizeable fraction of n (top-k attention at L ~ 1K, the top-k
//   feed-forward layer): a strided sample of the row estimates a threshold a
//   little below the k-th best value, and one branch-free pass keeps the
//   entries above it (about 1.5k of them). Should fewer than k pass (a row
//   whose sample misled), the row is streamed as below.
// - Otherwise, streaming: entries that beat a threshold are appended; whenever
//   the buffer holds 4k entries, selection cuts it back to the best k and
//   raises the threshold to the worst of those. Score rows are rejected almost
//   entirely by the threshold, in blocks the compiler vectorises; even an
//   ascending row costs O(1) amortised per entry (a cut every 3k appends).

namespace topkformer::kernels::cpu {

namespace {
// An order key and an index in one integer: f32 keys and 32-bit indices in 64
// bits, f64 keys and 64-bit indices in 128.
template <typename T>
struct PackedEntry;
template <>
struct PackedEntry<float> {
  using type = std::uint64_t;
};
template <>
struct PackedEntry<double> {
  __extension__ using type = unsigned __int128;  // a GCC and Clang extension
};

template <typename T>
class TopKSelector {
 public:
  using Packed = typename PackedEntry<T>::type;
  using Index = OrderKey<T>;
  static constexpr int index_bits = sizeof(Index) * 8;
  static constexpr Index index_mask = std::numeric_limits<Index>::max();
  static constexpr std::int64_t sample_size = 128;
  // The sample must hold this many of the k best on average for its estimate
  // to be worth the pass: k / n >= 1/16.
  static constexpr std::int64_t min_sample_hits = 8;

  explicit TopKSelector(std::int64_t k) : k_(k), capacity_(std::max<std::int64_t>(4 * k, 64)) {
    buffer_.reserve(capacity_);
  }

  // Leaves the k best entries of row[0, n) in the buffer, best first.
  void select(const T* row, std::int64_t n) {
    row_ = row;
    buffer_.clear();
    if (n <= capacity_) {
      for (std::int64_t i = 0; i < n; ++i) buffer_.push_back(pack(i));
    } else if (k_ * sample_size < min_sample_hits * n || !select_above_sample(n)) {
      stream(n);
    }
    if (static_cast<std::int64_t>(buffer_.size()) > k_) keep_best(k_);
    std::sort(buffer_.begin(), buffer_.end(), std::greater<Packed>());
  }

  std::int64_t index(std::int64_t rank) const {
    return static_cast<std::int64_t>(index_mask - static_cast<Index>(buffer_[rank]));
  }

 private:
  Packed pack(std::int64_t i) const {
    const Index bits = std::bit_cast<Index>(row_[i]);
    return Packed{order_key_of_bits<T>(bits)} << index_bits | (index_mask - static_cast<Index>(i));
  }

  // Buffers the entries above an estimate of the k-th best value from a strided
  // sample; false (buffer empty) when fewer than k are above it. The estimate is
  // the sample's r-th best, r three standard deviations above the k / n * size
  // hits the sample holds on average, so that a random row's sample rarely misleads.
  bool select_above_sample(std::int64_t n) {
    const std::int64_t stride = n / sample_size;
    for (std::int64_t j = 0; j < sample_size; ++j) buffer_.push_back(pack(j * stride));
    const double hits = static_cast<double>(k_) * sample_size / static_cast<double>(n);
    const auto rank = std::min<std::int64_t>(
        sample_size, static_cast<std::int64_t>(std::ceil(hits + 3 * std::sqrt(hits))));
    std::nth_element(buffer_.begin(), buffer_.begin() + (rank - 1), buffer_.end(),
                     std::greater<Packed>());
    const T threshold = row_[index(rank - 1)];
    // Keep every entry above the threshold or NaN (`<=` fails): they are the
    // only candidates when at least k of them exist. Branch-free: each index is
    // written, and the count advances only past the kept ones.
    candidates_.resize(n);
    std::int64_t count = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      candidates_[count] = static_cast<Index>(i);
      count += !(row_[i] <= threshold);
    }
    buffer_.clear();
    if (count < k_) return false;
    for (std::int64_t c = 0; c < count; ++c) buffer_.push_back(pack(candidates_[c]));
    return true;
  }

  void stream(std::int64_t n) {
    cut_ = false;
    std::int64_t i = 0;
    for (; i < n && !cut_; ++i) append(i);
    constexpr std::int64_t block = 16;
    while (i < n) {
      const std::int64_t end = std::min(n, i + block);
      if (any_above(row_, i, end, threshold_)) {
        // An entry equal to the threshold ties the worst kept one and has a
        // higher index, so it loses: `<=` rejects it. NaN fails `<=`.
        for (; i < end; ++i) {
          if (!(row_[i] <= threshold_)) append(i);
        }
      }
      i = end;
    }
  }

  // True when some entry of row[begin, end) might pass `threshold` (is greater
  // or NaN). Branch-free so that it vectorises.
  static bool any_above(const T* row, std::int64_t begin, std::int64_t end, T threshold) {
    bool any = false;
    for (std::int64_t i = begin; i < end; ++i) any |= !(row[i] <= threshold);
    return any;
  }

  void append(std::int64_t i) {
    buffer_.push_back(pack(i));
    if (static_cast<std::int64_t>(buffer_.size()) == capacity_) {
      keep_best(k_);
      threshold_ = row_[index(k_ - 1)];  // the worst kept
      cut_ = true;
    }
  }

  // Keeps the best `count` entries (unordered, but the worst of them last).
  void keep_best(std::int64_t count) {
    std::nth_element(buffer_.begin(), buffer_.begin() + (count - 1), buffer_.end(),
                     std::greater<Packed>());
    buffer_.resize(count);
  }

  std::int64_t k_, capacity_;
  std::vector<Packed> buffer_;
  std::vector<Index> candidates_;
  const T* row_ = nullptr;
  bool cut_ = false;  // a threshold exists once the buffer has been cut
  T threshold_{};
};
}  // namespace

void CpuBackend::topk_rows(const Tensor& x, std::int64_t k, const Tensor& values,
                           const Tensor& indices) {
  check_topk_rows(x, k, values, indices);
  const std::int64_t n = x.size(-1);
  TKF_CHECK(x.dtype() != DType::f32 || n <= std::numeric_limits<std::uint32_t>::max(),
            "topk_rows: f32 rows are limited to 2^32 - 1 entries, got ", n);
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
          for (std::int64_t j = 0; j < k; ++j) {
            const std::int64_t i = selector.index(j);
            top_values[r * k + j] = in[r * n + i];
            top_indices[r * k + j] = static_cast<I>(i);
          }
        }
      });
    });
  });
}

}  // namespace topkformer::kernels::cpu
