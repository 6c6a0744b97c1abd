// fill_masked against a loop over the rule of backend.h: key j of query row i
// (row r is query r % Lq of batch item r / (rows / B)) is masked iff causal and
// j > i + causal_offset, or j >= key_lengths[b]. Masked entries become the
// value exactly; every other entry keeps its bits.
#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include "kernels/mask_reference.h"
#include "kernels/reference.h"

namespace topkformer::testing {
namespace {

using kernels::RowMask;

// x with its masked entries set to value, by the rule.
std::vector<double> reference_fill(const MaskCase& c, std::vector<double> x, double value) {
  const std::vector<bool> masked = reference_mask(c);
  for (std::size_t e = 0; e < x.size(); ++e) {
    if (masked[e]) x[e] = value;
  }
  return x;
}

const MaskCase fill_cases[] = {
    {"causal", {2, 3, 5, 5}, true, 0},
    {"causal_more_queries_than_keys", {2, 2, 7, 4}, true, 0},
    {"causal_offset_2", {2, 2, 4, 7}, true, 2},
    {"causal_offset_kv_cache", {2, 2, 4, 7}, true, 3},      // 4 new queries after 3 cached keys
    {"causal_negative_offset", {2, 3, 5, 5}, true, -2},     // queries 0 and 1 fully masked
    {"causal_offset_past_keys", {1, 2, 3, 6}, true, 10},    // nothing masked
    {"causal_offset_before_keys", {1, 2, 3, 6}, true, -9},  // everything masked
    {"lengths_i64", {3, 2, 4, 6}, false, 0, {6, 2, 0}},     // item 2 fully masked
    {"lengths_i32_rank3", {3, 4, 6}, false, 0, {1, 5, 9}, DType::i32},  // 9 > Lk: no mask
    {"lengths_negative", {2, 2, 3, 5}, false, 0, {-1, 3}},
    {"causal_and_lengths", {2, 2, 6, 6}, true, 0, {4, 6}},
    {"offset_and_lengths_i32", {2, 3, 4, 7}, true, 3, {5, 7}, DType::i32},
    {"negative_offset_and_lengths", {3, 1, 5, 5}, true, -1, {2, 5, 0}},
};

class FillMaskedKernel : public FloatingKernelTest {};

TEST_P(FillMaskedKernel, MatchesMaskRule) {
  const double infinity = std::numeric_limits<double>::infinity();
  for (const MaskCase& c : fill_cases) {
    for (const double value : {-infinity, -3.5}) {
      const Tensor x = random_normal(c.shape, dtype(), 400);
      const std::vector<double> want = reference_fill(c, read_values(x), value);
      cpu_kernels().fill_masked(x, make_mask(c), value);
      // Exact: the value is representable in both dtypes, the rest is untouched.
      EXPECT_EQ(read_values(x), want) << c.name << " value " << value;
    }
  }
}

// Guards the cases themselves: each masks some entries but not all, except the
// two meant to mask nothing or everything.
TEST(FillMaskedCases, MaskSomethingButNotEverything) {
  for (const MaskCase& c : fill_cases) {
    const std::vector<double> ones(std::size_t(shape_numel(c.shape)), 1.0);
    const std::vector<double> filled = reference_fill(c, ones, 0.0);
    const auto masked = std::count(filled.begin(), filled.end(), 0.0);
    const bool none = c.name == "causal_offset_past_keys";
    const bool all = c.name == "causal_offset_before_keys";
    EXPECT_EQ(masked == 0, none) << c.name;
    EXPECT_EQ(masked == std::ptrdiff_t(ones.size()), all) << c.name;
  }
}

TEST_P(FillMaskedKernel, EmptyMaskLeavesTensorUnchanged) {
  const Tensor x = random_normal({2, 3, 4, 5}, dtype(), 410);
  const std::vector<double> before = read_values(x);
  ASSERT_TRUE(RowMask{}.empty());
  cpu_kernels().fill_masked(x, RowMask{}, -1.0);
  EXPECT_EQ(read_values(x), before);
  // causal_offset alone does not make a mask.
  RowMask offset_only;
  offset_only.causal_offset = -3;
  cpu_kernels().fill_masked(x, offset_only, -1.0);
  EXPECT_EQ(read_values(x), before);
}

INSTANTIATE_TEST_SUITE_P(FillMasked, FillMaskedKernel, floating_dtypes(), dtype_test_name);

}  // namespace
}  // namespace topkformer::testing
