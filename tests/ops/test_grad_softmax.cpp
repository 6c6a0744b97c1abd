// Finite-difference gradient checks of softmax and log_softmax, unmasked and
// with the causal and key-padding masks of attention scores.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "ops/grad_helpers.h"
#include "test_util.h"
#include "topkformer/autograd/tape.h"
#include "topkformer/ops.h"

namespace topkformer {
namespace {

using ops::RowMask;
using testing::gradcheck_passes;
using testing::leaf;

RowMask causal(std::int64_t offset = 0) {
  RowMask mask;
  mask.causal = true;
  mask.causal_offset = offset;
  return mask;
}

RowMask padding(const std::vector<std::int64_t>& lengths, bool is_causal = false) {
  RowMask mask;
  mask.causal = is_causal;
  mask.key_lengths = Tensor::from_vector({static_cast<std::int64_t>(lengths.size())}, lengths);
  return mask;
}

struct MaskCase {
  std::string name;
  RowMask mask;
};

// Scores are [B=2, H=2, Lq=3, Lk=4]: key_lengths has one entry per batch item.
std::vector<MaskCase> masks() {
  return {
      {"no mask", RowMask{}},
      {"causal", causal()},
      {"causal offset 1", causal(1)},
      {"key_lengths", padding({2, 4})},
      {"key_lengths and causal", padding({3, 1}, true)},
  };
}

TEST(GradSoftmax, SoftmaxWithEachMask) {
  Generator generator(51);
  for (const MaskCase& c : masks()) {
    SCOPED_TRACE(c.name);
    const RowMask& mask = c.mask;
    EXPECT_TRUE(gradcheck_passes([&](const auto& in) { return ops::softmax(in[0], mask); },
                                 {leaf({2, 2, 3, 4}, generator)}));
  }
}

TEST(GradSoftmax, LogSoftmaxWithEachMask) {
  // Masked log-probabilities are -inf, which no finite difference survives;
  // exp() maps them to 0 (with zero gradient), so the check sees only the
  // valid entries, and log_softmax's own backward still runs on every row.
  Generator generator(52);
  for (const MaskCase& c : masks()) {
    SCOPED_TRACE(c.name);
    const RowMask& mask = c.mask;
    EXPECT_TRUE(
        gradcheck_passes([&](const auto& in) { return ops::exp(ops::log_softmax(in[0], mask)); },
                         {leaf({2, 2, 3, 4}, generator)}));
  }
}

TEST(GradSoftmax, LogSoftmaxValidPrefixDirectly) {
  // Without the exp: keep only the keys every batch item may attend to.
  Generator generator(53);
  const RowMask mask = padding({3, 3});
  EXPECT_TRUE(gradcheck_passes(
      [&](const auto& in) { return ops::narrow(ops::log_softmax(in[0], mask), -1, 0, 3); },
      {leaf({2, 3, 5}, generator)}));
  EXPECT_TRUE(gradcheck_passes([](const auto& in) { return ops::log_softmax(in[0]); },
                               {leaf({4, 6}, generator)}));
}

TEST(GradSoftmax, NonContiguousScores) {
  Generator generator(54);
  const RowMask mask = causal();
  EXPECT_TRUE(gradcheck_passes([&](const auto& in) { return ops::softmax(in[0], mask); },
                               {testing::transposed_leaf({2, 4, 4}, generator)}));
  EXPECT_TRUE(gradcheck_passes([](const auto& in) { return ops::log_softmax(in[0]); },
                               {testing::strided_leaf({3, 5}, generator)}));
}

TEST(GradSoftmax, MaskedKeysGetNoGradient) {
  // Finite differences see a masked key as constant; the analytic gradient
  // must be exactly 0 there (not merely small).
  Generator generator(55);
  const Tensor x = leaf({1, 3, 3}, generator);
  const Tensor w = Tensor::randn({1, 3, 3}, generator, DType::f64);
  autograd::backward({ops::softmax(x, causal())}, {w});
  for (std::int64_t i = 0; i < 3; ++i) {
    for (std::int64_t j = i + 1; j < 3; ++j) EXPECT_EQ(x.grad().value_at({0, i, j}), 0.0);
  }
}

TEST(GradSoftmax, LogSoftmaxIgnoresSeedsOnMaskedKeys) {
  // Masked log-probabilities are the constant -inf: whatever gradient arrives
  // there must not leak into the valid entries of the row.
  Generator generator(56);
  const RowMask mask = padding({2, 3});
  const Tensor seed = Tensor::randn({2, 2, 4}, generator, DType::f64);
  Tensor valid_seed = seed.clone();
  valid_seed.narrow(0, 0, 1).narrow(2, 2, 2).zero_();
  valid_seed.narrow(0, 1, 1).narrow(2, 3, 1).zero_();
  Tensor x = leaf({2, 2, 4}, generator);
  autograd::backward({ops::log_softmax(x, mask)}, {seed});
  const Tensor with_masked_seeds = x.grad();
  x.zero_grad();
  autograd::backward({ops::log_softmax(x, mask)}, {valid_seed});
  EXPECT_LE(testing::max_abs_diff(with_masked_seeds, x.grad()), 1e-15);
}

}  // namespace
}  // namespace topkformer
