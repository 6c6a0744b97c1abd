// Finite-difference gradient checks of matmul and linear: every transpose
// flag, batched and broadcast batch dimensions, the folded path taken for a
// 2-D right operand, and operands that are views (passed to BLAS as they are,
// or copied when they have no unit stride).
#include <gtest/gtest.h>

#include <string>

#include "ops/grad_helpers.h"
#include "topkformer/ops.h"

namespace topkformer {
namespace {

using testing::gradcheck_passes;
using testing::leaf;

// The stored shape of an operand whose op() is [rows, cols] (with `batch`
// leading dimensions): transposed operands are stored the other way round.
Shape stored_shape(Shape batch, std::int64_t rows, std::int64_t cols, bool transposed) {
  batch.push_back(transposed ? cols : rows);
  batch.push_back(transposed ? rows : cols);
  return batch;
}

struct MatmulCase {
  Shape batch_a, batch_b;
};

TEST(GradMatmul, AllTransposeFlagsAndBatchLayouts) {
  // Plain 2-D, equal batches, broadcast batches (both directions), a 2-D
  // left operand against a batch, and a 2-D right operand against a batch
  // (the folded path when a is not transposed).
  const std::vector<MatmulCase> cases = {
      {{}, {}}, {{2}, {2}}, {{2, 1}, {3}}, {{1}, {2}}, {{}, {2}}, {{2}, {}}, {{2, 2}, {}},
  };
  const std::int64_t m = 3, k = 4, n = 2;
  Generator generator(31);
  for (const MatmulCase& c : cases) {
    for (const bool ta : {false, true}) {
      for (const bool tb : {false, true}) {
        SCOPED_TRACE("batch " + shape_str(c.batch_a) + " x " + shape_str(c.batch_b) +
                     " ta=" + std::to_string(ta) + " tb=" + std::to_string(tb));
        const Tensor a = leaf(stored_shape(c.batch_a, m, k, ta), generator);
        const Tensor b = leaf(stored_shape(c.batch_b, k, n, tb), generator);
        EXPECT_TRUE(gradcheck_passes(
            [&](const auto& in) { return ops::matmul(in[0], in[1], ta, tb); }, {a, b}));
      }
    }
  }
}

TEST(GradMatmul, TransposedViewOperands) {
  // A transposed view has unit stride in its rows instead of its columns:
  // BLAS gets it without a copy, with the transpose flag flipped.
  Generator generator(32);
  for (const bool ta : {false, true}) {
    for (const bool tb : {false, true}) {
      SCOPED_TRACE("ta=" + std::to_string(ta) + " tb=" + std::to_string(tb));
      const Tensor a = testing::transposed_leaf(stored_shape({2}, 3, 4, ta), generator);
      const Tensor b = testing::transposed_leaf(stored_shape({}, 4, 5, tb), generator);
      EXPECT_TRUE(gradcheck_passes(
          [&](const auto& in) { return ops::matmul(in[0], in[1], ta, tb); }, {a, b}));
    }
  }
}

TEST(GradMatmul, StridedViewOperands) {
  // Every other column: no unit stride in either dimension, so the op copies.
  // Every other row: unit column stride with a larger leading dimension.
  Generator generator(33);
  Tensor columns = Tensor::randn({3, 8}, generator, DType::f64).slice(1, 0, 8, 2);
  columns.set_requires_grad(true);
  const Tensor rows = testing::strided_leaf({4, 5}, generator);
  ASSERT_NE(columns.stride(-1), 1);
  EXPECT_TRUE(
      gradcheck_passes([](const auto& in) { return ops::matmul(in[0], in[1]); }, {columns, rows}));
  // The same views in a batch against a 2-D right operand (the folded path).
  Tensor batch = Tensor::randn({2, 3, 8}, generator, DType::f64).slice(2, 1, 8, 2);
  batch.set_requires_grad(true);
  EXPECT_TRUE(gradcheck_passes([](const auto& in) { return ops::matmul(in[0], in[1]); },
                               {batch, testing::transposed_leaf({4, 2}, generator)}));
}

TEST(GradMatmul, OnlyOneOperandRequiresGrad) {
  Generator generator(34);
  const Tensor constant = Tensor::randn({4, 2}, generator, DType::f64);
  EXPECT_TRUE(gradcheck_passes([](const auto& in) { return ops::matmul(in[0], in[1]); },
                               {leaf({2, 3, 4}, generator), constant}));
  EXPECT_TRUE(gradcheck_passes([](const auto& in) { return ops::matmul(in[1], in[0]); },
                               {leaf({4, 3}, generator), constant.transpose(0, 1)}));
}

TEST(GradLinear, WithAndWithoutBias) {
  Generator generator(35);
  for (const Shape& x_shape : {Shape{3, 4}, Shape{2, 3, 4}}) {
    SCOPED_TRACE(shape_str(x_shape));
    const Tensor x = leaf(x_shape, generator);
    const Tensor weight = leaf({5, 4}, generator);
    const Tensor bias = leaf({5}, generator);
    EXPECT_TRUE(gradcheck_passes([](const auto& in) { return ops::linear(in[0], in[1], in[2]); },
                                 {x, weight, bias}));
    EXPECT_TRUE(
        gradcheck_passes([](const auto& in) { return ops::linear(in[0], in[1]); }, {x, weight}));
  }
}

}  // namespace
}  // namespace topkformer
