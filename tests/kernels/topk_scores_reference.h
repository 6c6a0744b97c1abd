// Tools for the topk_scores tests of every device: cases, inputs, the dense
// reference (gemm + fill_masked + topk_rows over whole rows) and checks of a
// result against exact scores.
//
// Implementations sum the scores in different orders (OpenBLAS blocks, the
// CUDA kernel's registers), so keys whose scores nearly tie may trade places
// between them. The checks therefore recompute every score in double from
// the inputs and bound an implementation's rounding error in query row i by
// eps_i = rel * scale * max_j sum_c |q_ic k_jc|, rel = max(tolerance(dtype),
// 2 d u) with u the unit roundoff (a d-term dot product errs by at most about
// d u sum |q_c k_c|). A valid result holds min(k, visible) distinct visible
// keys, each with its exact score within eps_i, sorted (equal values by key),
// no key left out beats a chosen one by more than 2 eps_i, and the remaining
// slots are -inf. Two valid results may differ only in keys whose scores lie
// within 2 eps_i of the k-th best. Inputs of small integers make every score
// exact in any order: then results must agree bit for bit.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "kernels/reference.h"

namespace topkformer::testing {

struct TopKScoresCase {
  std::string name;
  std::int64_t groups = 2, queries = 1, keys = 1, head_dim = 16;
  bool causal = false;
  std::int64_t causal_offset = 0;
  std::vector<double> key_lengths = {};  // per batch item (groups / size groups each); {}: none
  DType length_dtype = DType::i64;
};

inline kernels::RowMask topk_scores_mask(const TopKScoresCase& c) {
  return row_mask_of(c.causal, c.causal_offset, c.key_lengths, c.length_dtype);
}

// Keys [0, n) are visible to query i of group g (backend.h's RowMask rule).
inline std::int64_t visible_keys(const TopKScoresCase& c, std::int64_t g, std::int64_t i) {
  std::int64_t n = c.keys;
  if (!c.key_lengths.empty()) {
    const std::int64_t groups_per_item = c.groups / std::int64_t(c.key_lengths.size());
    n = std::clamp<std::int64_t>(std::int64_t(c.key_lengths[g / groups_per_item]), 0, n);
  }
  if (c.causal) n = std::clamp<std::int64_t>(i + c.causal_offset + 1, 0, n);
  return n;
}

enum class ScoreInputs {
  normal,          // q, keys ~ N(0, 1), scale 1/sqrt(d)
  small_integers,  // q, keys in {-2, ..., 2}, scale 1/2: exact scores, many ties
  ascending,       // scores rising with the key: every key beats the running k-th best
};

struct TopKScoresInputs {
  Tensor q, keys;  // on the CPU
  double scale = 1.0;
};

inline TopKScoresInputs topk_scores_inputs(const TopKScoresCase& c, DType dtype, ScoreInputs kind,
                                           std::uint64_t seed) {
  const Shape q_shape{c.groups, c.queries, c.head_dim}, key_shape{c.groups, c.keys, c.head_dim};
  const double unit_scale = 1.0 / std::sqrt(double(std::max<std::int64_t>(c.head_dim, 1)));
  switch (kind) {
    case ScoreInputs::normal:
      return {random_normal(q_shape, dtype, seed), random_normal(key_shape, dtype, seed + 1),
              unit_scale};
    case ScoreInputs::small_integers: {
      std::vector<double> q = read_values(random_uniform(q_shape, dtype, seed, -2.0, 3.0));
      std::vector<double> keys = read_values(random_uniform(key_shape, dtype, seed + 1, -2.0, 3.0));
      for (double& v : q) v = std::min(std::floor(v), 2.0);
      for (double& v : keys) v = std::min(std::floor(v), 2.0);
      return {tensor_of(q_shape, q, dtype), tensor_of(key_shape, keys, dtype), 0.5};
    }
    case ScoreInputs::ascending: {
      // keys[g, j] = j / Lk + noise: score_j = (j / Lk) sum(q) + O(1e-3), sum(q) > d / 2.
      const std::vector<double> q = read_values(random_uniform(q_shape, dtype, seed, 0.5, 1.5));
      std::vector<double> keys = read_values(random_normal(key_shape, dtype, seed + 1, 1e-3));
      for (std::size_t e = 0; e < keys.size(); ++e) {
        const std::int64_t j = std::int64_t(e) / c.head_dim % c.keys;
        keys[e] += double(j) / double(c.keys);
      }
      return {tensor_of(q_shape, q, dtype), tensor_of(key_shape, keys, dtype), unit_scale};
    }
  }
  return {};
}

// A result of topk_scores read back: [G, Lq, k] in row-major order.
struct TopKScoresResult {
  std::vector<double> values;
  std::vector<std::int64_t> indices;
};

// Runs backend.topk_scores on q and keys (on the backend's device).
inline TopKScoresResult run_topk_scores(kernels::Backend& backend, const Tensor& q,
                                        const Tensor& keys, double scale,
                                        const kernels::RowMask& mask, std::int64_t k,
                                        std::int64_t chunk_rows) {
  const Shape shape{q.size(0), q.size(1), k};
  const Tensor values = Tensor::empty(shape, q.dtype(), q.device());
  const Tensor indices = Tensor::empty(shape, DType::i32, q.device());
  backend.topk_scores(q, keys, scale, mask, k, chunk_rows, values, indices);
  return {read_values(values.to(Device::cpu())), read_indices(indices.to(Device::cpu()))};
}

// The dense reference on the CPU: all [G, Lq, Lk] scores by gemm, the mask by
// fill_masked, then topk_rows over whole rows.
inline TopKScoresResult dense_topk_scores(const TopKScoresCase& c, const TopKScoresInputs& in,
                                          std::int64_t k) {
  kernels::Backend& cpu = cpu_kernels();
  const Tensor scores = Tensor::empty({c.groups, c.queries, c.keys}, in.q.dtype());
  cpu.gemm(in.q, false, in.keys, true, scores, in.scale, 0.0);
  // [B, groups per item, Lq, Lk]: fill_masked takes one key length per item of dimension 0.
  const std::int64_t items = std::max<std::int64_t>(std::int64_t(c.key_lengths.size()), 1);
  cpu.fill_masked(scores.view({items, c.groups / items, c.queries, c.keys}), topk_scores_mask(c),
                  -std::numeric_limits<double>::infinity());
  const Tensor values = Tensor::empty({c.groups * c.queries, k}, in.q.dtype());
  const Tensor indices = Tensor::empty({c.groups * c.queries, k}, DType::i32);
  cpu.topk_rows(scores.view({c.groups * c.queries, c.keys}), k, values, indices);
  return {read_values(values), read_indices(indices)};
}

// Checks results of one case and k against the exact scores of its inputs.
class TopKScoresChecker {
 public:
  TopKScoresChecker(const TopKScoresCase& c, const TopKScoresInputs& in, std::int64_t k)
      : case_(c),
        k_(k),
        scale_(in.scale),
        q_(read_values(in.q)),
        keys_(read_values(in.keys)),
        rel_(std::max(
            tolerance(in.q.dtype()),
            2.0 * double(c.head_dim) * (in.q.dtype() == DType::f64 ? 0x1p-53 : 0x1p-24))) {}

  // The result is a valid top-k of the exact scores (header comment).
  void expect_valid(const TopKScoresResult& got, const std::string& what) const {
    check_each_row(
        what, [&](std::int64_t g, std::int64_t i, std::int64_t base, Failures& failures) {
          const Row row = exact_row(g, i);
          const std::int64_t n = std::int64_t(row.scores.size()), m = std::min(k_, n);
          std::vector<char> chosen(static_cast<std::size_t>(n), 0);
          double worst_chosen = std::numeric_limits<double>::infinity();
          for (std::int64_t t = 0; t < k_; ++t) {
            const double v = got.values[base + t];
            const std::int64_t j = got.indices[base + t];
            const auto where = [&] {
              return "group " + std::to_string(g) + " query " + std::to_string(i) + " slot " +
                     std::to_string(t) + " (sees " + std::to_string(n) + " keys): ";
            };
            if (t >= m) {
              if (!(v == -std::numeric_limits<double>::infinity())) {
                failures.add(where() + "value " + std::to_string(v) + " instead of -inf");
              }
              if (j < 0 || j >= case_.keys) failures.add(where() + "index out of range");
              continue;
            }
            if (j < 0 || j >= n) {
              failures.add(where() + "key " + std::to_string(j) + " is not visible");
              continue;
            }
            if (chosen[j]) {
              failures.add(where() + "key " + std::to_string(j) + " chosen twice");
              continue;
            }
            chosen[j] = 1;
            worst_chosen = std::min(worst_chosen, row.scores[j]);
            if (!(std::abs(v - row.scores[j]) <= row.eps)) {
              failures.add(where() + "key " + std::to_string(j) + " has value " +
                           std::to_string(v) + ", exact score " + std::to_string(row.scores[j]));
            }
            if (t > 0) {
              const double before = got.values[base + t - 1];
              if (v > before || (v == before && j < got.indices[base + t - 1])) {
                failures.add(where() + "not sorted after the slot before");
              }
            }
          }
          for (std::int64_t j = 0; j < n; ++j) {
            if (!chosen[j] && row.scores[j] > worst_chosen + 2 * row.eps) {
              failures.add("group " + std::to_string(g) + " query " + std::to_string(i) + ": key " +
                           std::to_string(j) + " left out with exact score " +
                           std::to_string(row.scores[j]) + " above a chosen " +
                           std::to_string(worst_chosen));
            }
          }
        });
  }

  // Two results agree up to the order of near-ties (header comment); call
  // expect_valid on each as well.
  void expect_same(const TopKScoresResult& got, const TopKScoresResult& want,
                   const std::string& what) const {
    check_each_row(what, [&](std::int64_t g, std::int64_t i, std::int64_t base,
                             Failures& failures) {
      const Row row = exact_row(g, i);
      const std::int64_t n = std::int64_t(row.scores.size()), m = std::min(k_, n);
      if (m == 0) return;
      const std::string where = "group " + std::to_string(g) + " query " + std::to_string(i) + ": ";
      std::vector<double> sorted = row.scores;
      std::nth_element(sorted.begin(), sorted.begin() + (m - 1), sorted.end(),
                       std::greater<double>());
      const double kth = sorted[m - 1];
      std::vector<std::int64_t> got_keys, want_keys;
      for (std::int64_t t = 0; t < m; ++t) {
        if (!(std::abs(got.values[base + t] - want.values[base + t]) <= 2 * row.eps)) {
          failures.add(where + "slot " + std::to_string(t) + " holds " +
                       std::to_string(got.values[base + t]) + ", want " +
                       std::to_string(want.values[base + t]));
        }
        got_keys.push_back(got.indices[base + t]);
        want_keys.push_back(want.indices[base + t]);
      }
      std::sort(got_keys.begin(), got_keys.end());
      std::sort(want_keys.begin(), want_keys.end());
      std::vector<std::int64_t> differ;
      std::set_symmetric_difference(got_keys.begin(), got_keys.end(), want_keys.begin(),
                                    want_keys.end(), std::back_inserter(differ));
      for (const std::int64_t j : differ) {
        if (j < 0 || j >= n || std::abs(row.scores[j] - kth) > 2 * row.eps) {
          failures.add(where + "key " + std::to_string(j) +
                       " is chosen by one result only, and its score is not within rounding"
                       " of the k-th best " +
                       std::to_string(kth));
        }
      }
    });
  }

  // Bit-for-bit agreement: every value, and the keys of the slots that some
  // key reached (the others' indices are unspecified).
  void expect_identical(const TopKScoresResult& got, const TopKScoresResult& want,
                        const std::string& what) const {
    check_each_row(
        what, [&](std::int64_t g, std::int64_t i, std::int64_t base, Failures& failures) {
          const std::int64_t m = std::min(k_, visible_keys(case_, g, i));
          for (std::int64_t t = 0; t < k_; ++t) {
            const bool same_value = got.values[base + t] == want.values[base + t];
            const bool same_key = t >= m || got.indices[base + t] == want.indices[base + t];
            if (!same_value || !same_key) {
              failures.add("group " + std::to_string(g) + " query " + std::to_string(i) + " slot " +
                           std::to_string(t) + ": got (" + std::to_string(got.values[base + t]) +
                           ", key " + std::to_string(got.indices[base + t]) + "), want (" +
                           std::to_string(want.values[base + t]) + ", key " +
                           std::to_string(want.indices[base + t]) + ")");
            }
          }
        });
  }

 private:
  struct Row {
    std::vector<double> scores;  // exact scores of the visible keys
    double eps = 0.0;            // the rounding bound of the row
  };

  // Counts failures and keeps the first few messages.
  struct Failures {
    std::int64_t count = 0;
    std::string first;
    void add(const std::string& message) {
      if (count++ < 3) first += "\n  " + message;
    }
    void expect_none(const std::string& what) const {
      EXPECT_EQ(count, 0) << what << ": " << count << " failures, the first:" << first;
    }
  };

  // Calls check(g, i, base, failures) for query i of every group g, where
  // base is the row's first slot in a result, then expects no failures.
  template <typename Check>
  void check_each_row(const std::string& what, Check&& check) const {
    Failures failures;
    for (std::int64_t g = 0; g < case_.groups; ++g) {
      for (std::int64_t i = 0; i < case_.queries; ++i) {
        check(g, i, (g * case_.queries + i) * k_, failures);
      }
    }
    failures.expect_none(what);
  }

  Row exact_row(std::int64_t g, std::int64_t i) const {
    const std::int64_t d = case_.head_dim, n = visible_keys(case_, g, i);
    const double* q = q_.data() + (g * case_.queries + i) * d;
    Row row;
    row.scores.resize(static_cast<std::size_t>(n));
    double magnitude = 0.0;
    for (std::int64_t j = 0; j < n; ++j) {
      const double* key = keys_.data() + (g * case_.keys + j) * d;
      double dot = 0.0, absolute = 0.0;
      for (std::int64_t c = 0; c < d; ++c) {
        dot += q[c] * key[c];
        absolute += std::abs(q[c] * key[c]);
      }
      row.scores[j] = scale_ * dot;
      magnitude = std::max(magnitude, scale_ * absolute);
    }
    row.eps = rel_ * magnitude;
    return row;
  }

  TopKScoresCase case_;
  std::int64_t k_;
  double scale_;
  std::vector<double> q_, keys_;
  double rel_;
};

}  // namespace topkformer::testing
