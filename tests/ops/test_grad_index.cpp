// Finite-difference gradient checks of the index-driven ops: topk values,
// gather_rows (gradient scattered back, repeated indices summed) and
// scatter_add_rows (gradient to both the destination and the added rows).
#include <gtest/gtest.h>

#include <string>

#include "ops/grad_helpers.h"
#include "topkformer/autograd/tape.h"
#include "topkformer/ops.h"

namespace topkformer {
namespace {

using testing::gradcheck_passes;
using testing::ids;
using testing::leaf;

TEST(GradTopk, ValuesOfEveryRow) {
  // randn values are distinct far beyond the 1e-6 step, so the selection
  // does not change during the check.
  Generator generator(71);
  for (const std::int64_t k : {1, 3, 6}) {
    SCOPED_TRACE("k " + std::to_string(k));
    EXPECT_TRUE(gradcheck_passes([&](const auto& in) { return ops::topk(in[0], k).first; },
                                 {leaf({2, 3, 6}, generator)}));
  }
  EXPECT_TRUE(gradcheck_passes([](const auto& in) { return ops::topk(in[0], 2).first; },
                               {testing::transposed_leaf({4, 5}, generator)}));
}

TEST(GradTopk, IndicesNeedNoGradient) {
  Generator generator(72);
  const Tensor x = leaf({2, 5}, generator);
  const auto [values, indices] = ops::topk(x, 3);
  EXPECT_TRUE(values.requires_grad());
  EXPECT_FALSE(indices.requires_grad());
  EXPECT_EQ(indices.dtype(), DType::i64);
  autograd::current_tape().clear();  // the values are not differentiated here
}

TEST(GradGatherRows, RepeatedIndicesSumTheirGradients) {
  Generator generator(73);
  // Group 0 picks row 1 twice; group 1 picks row 4 three times; rows 2 and 3
  // of group 0 are never picked.
  const Tensor index = ids({2, 4}, {1, 0, 1, 4, 4, 2, 4, 4});
  EXPECT_TRUE(gradcheck_passes([&](const auto& in) { return ops::gather_rows(in[0], index); },
                               {leaf({2, 5, 3}, generator)}));
  EXPECT_TRUE(gradcheck_passes(
      [&](const auto& in) { return ops::gather_rows(in[0], index.to(DType::i32)); },
      {testing::transposed_leaf({2, 5, 3}, generator)}));
}

TEST(GradScatterAddRows, DestinationAndRows) {
  Generator generator(74);
  const Tensor index = ids({2, 3}, {2, 0, 2, 1, 1, 1});
  const Tensor dst = leaf({2, 4, 3}, generator);
  const Tensor rows = leaf({2, 3, 3}, generator);
  EXPECT_TRUE(gradcheck_passes(
      [&](const auto& in) { return ops::scatter_add_rows(in[0], index, in[1]); }, {dst, rows}));
  // Only one side requiring gradients, and non-contiguous operands.
  EXPECT_TRUE(
      gradcheck_passes([&](const auto& in) { return ops::scatter_add_rows(in[0], index, in[1]); },
                       {Tensor::randn({2, 4, 3}, generator, DType::f64),
                        testing::transposed_leaf({2, 3, 3}, generator)}));
  EXPECT_TRUE(
      gradcheck_passes([&](const auto& in) { return ops::scatter_add_rows(in[0], index, in[1]); },
                       {testing::strided_leaf({2, 4, 3}, generator),
                        Tensor::randn({2, 3, 3}, generator, DType::f64)}));
}

}  // namespace
}  // namespace topkformer
