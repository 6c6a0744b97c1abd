// Row-wise top-k on long rows in the orders that take each selection path
// (src/kernels/cpu/topk_rows.cpp): the whole row (k >= n / 4), a threshold from a
// sample (k >= n / 16) and streaming (smaller k); random rows (the threshold
// rejects almost everything), ascending (every entry beats the threshold),
// descending and constant rows (ties go to the lower index), and a row whose
// sample holds only its largest values (fewer than k pass: streamed instead).
#include <gtest/gtest.h>

#include <numeric>

#include "topkformer/kernels/backend.h"

namespace topkformer {
namespace {

// The k best (value desc, index asc) of a row, by a full sort.
std::vector<std::int64_t> sorted_top_k(const std::vector<float>& row, std::int64_t k) {
  std::vector<std::int64_t> order(row.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int64_t a, std::int64_t b) { return row[a] > row[b]; });
  order.resize(k);
  return order;
}

void expect_top_k_matches_sort(const std::vector<float>& row, std::int64_t k) {
  const auto n = static_cast<std::int64_t>(row.size());
  const Tensor x = Tensor::from_vector<float>({1, n}, row);
  const Tensor values = Tensor::empty({1, k});
  const Tensor indices = Tensor::empty({1, k}, DType::i64);
  kernels::backend(Device::cpu()).topk_rows(x, k, values, indices);
  const std::vector<std::int64_t> expected = sorted_top_k(row, k);
  EXPECT_EQ(indices.to_vector<std::int64_t>(), expected);
  for (std::int64_t j = 0; j < k; ++j) EXPECT_EQ(values.to_vector<float>()[j], row[expected[j]]);
}

TEST(TopKOrders, LongRowsInEveryOrderMatchAFullSort) {
  constexpr std::int64_t n = 5000;
  Generator generator(21);
  std::vector<float> random = Tensor::randn({n}, generator).to_vector<float>();
  std::vector<float> ascending(n), descending(n), constant(n, 0.5f), few_values(n);
  std::vector<float> large_where_sampled = random;
  const std::int64_t sample_stride = n / 128;  // the selector's sample of 128
  for (std::int64_t i = 0; i < n; ++i) {
    ascending[i] = float(i);
    descending[i] = float(n - i);
    few_values[i] = float(i % 7);
    if (i % sample_stride == 0) large_where_sampled[i] = 100.0f;
  }
  for (std::int64_t k : {1, 17, 128, 700, 1249, 4999, 5000}) {
    SCOPED_TRACE("k " + std::to_string(k));
    for (const std::vector<float>* row :
         {&random, &ascending, &descending, &constant, &few_values, &large_where_sampled}) {
      expect_top_k_matches_sort(*row, k);
    }
  }
}

}  // namespace
}  // namespace topkformer
