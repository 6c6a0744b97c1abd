// Finite-difference gradient checks of the shape ops. Most return views, so
// the backward must put the gradient back in the right place of the input
// (scatter into zeros for slices, the inverse permutation, a broadcast sum).
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "ops/grad_helpers.h"
#include "topkformer/ops.h"

namespace topkformer {
namespace {

using testing::gradcheck_passes;
using testing::leaf;

struct ShapeOpCase {
  std::string name;
  Shape input_shape;
  std::function<Tensor(const Tensor&)> fn;
};

std::vector<ShapeOpCase> shape_ops() {
  return {
      {"reshape",
       {2, 3, 4},
       [](const Tensor& x) {
         return ops::reshape(x, {4, -1});
       }},
      {"reshape to scalar", {1, 1}, [](const Tensor& x) { return ops::reshape(x, {}); }},
      {"transpose", {2, 3, 4}, [](const Tensor& x) { return ops::transpose(x, 0, 2); }},
      {"transpose negative dims",
       {2, 3, 4},
       [](const Tensor& x) { return ops::transpose(x, -1, -2); }},
      {"permute",
       {2, 3, 4},
       [](const Tensor& x) {
         return ops::permute(x, {1, 2, 0});
       }},
      {"slice", {5, 3}, [](const Tensor& x) { return ops::slice(x, 0, 1, 4); }},
      {"slice with step", {3, 7}, [](const Tensor& x) { return ops::slice(x, 1, 1, 7, 2); }},
      {"narrow", {2, 6}, [](const Tensor& x) { return ops::narrow(x, 1, 2, 3); }},
      {"select", {3, 4}, [](const Tensor& x) { return ops::select(x, 0, 2); }},
      {"select last dim", {3, 4}, [](const Tensor& x) { return ops::select(x, -1, 1); }},
      {"unsqueeze", {3, 4}, [](const Tensor& x) { return ops::unsqueeze(x, 1); }},
      {"squeeze", {3, 1, 4}, [](const Tensor& x) { return ops::squeeze(x, 1); }},
      {"expand",
       {3, 1},
       [](const Tensor& x) {
         return ops::expand(x, {2, 3, 4});
       }},
      {"expand scalar",
       {},
       [](const Tensor& x) {
         return ops::expand(x, {2, 3});
       }},
      {"contiguous", {3, 4}, [](const Tensor& x) { return ops::contiguous(x); }},
  };
}

TEST(GradShape, EachOpOnAContiguousLeaf) {
  Generator generator(41);
  for (const ShapeOpCase& op : shape_ops()) {
    SCOPED_TRACE(op.name);
    EXPECT_TRUE(gradcheck_passes([&](const auto& in) { return op.fn(in[0]); },
                                 {leaf(op.input_shape, generator)}));
  }
}

TEST(GradShape, EachOpOnANonContiguousLeaf) {
  // The same ops on a transposed view of the same shape: reshape must copy,
  // contiguous() must copy, views compose their strides.
  Generator generator(42);
  for (const ShapeOpCase& op : shape_ops()) {
    if (op.input_shape.size() < 2) continue;
    SCOPED_TRACE(op.name);
    const Tensor x = testing::transposed_leaf(op.input_shape, generator);
    EXPECT_TRUE(gradcheck_passes([&](const auto& in) { return op.fn(in[0]); }, {x}));
  }
}

TEST(GradShape, ChainedViews) {
  // Views of views: each backward hands a view-shaped gradient to the next.
  Generator generator(43);
  EXPECT_TRUE(gradcheck_passes(
      [](const auto& in) {
        const Tensor t = ops::transpose(ops::slice(in[0], 2, 0, 6, 3), 0, 1);
        return ops::select(ops::unsqueeze(t, 0), 1, 1);
      },
      {leaf({2, 3, 6}, generator)}));
}

TEST(GradShape, ConcatAlongEachDimension) {
  Generator generator(44);
  for (const int dim : {0, 1, -1}) {
    SCOPED_TRACE("dim " + std::to_string(dim));
    Shape a_shape{2, 3, 2}, b_shape{2, 3, 2}, c_shape{2, 3, 2};
    const int d = dim < 0 ? dim + 3 : dim;
    b_shape[d] = 1;
    c_shape[d] = 3;
    const Tensor a = leaf(a_shape, generator);
    const Tensor b = leaf(b_shape, generator);
    const Tensor c = testing::transposed_leaf(c_shape, generator);
    EXPECT_TRUE(gradcheck_passes(
        [&](const auto& in) {
          return ops::concat({in[0], in[1], in[2]}, dim);
        },
        {a, b, c}));
  }
}

TEST(GradShape, ConcatOfTheSameTensorTwice) {
  Generator generator(45);
  EXPECT_TRUE(gradcheck_passes(
      [](const auto& in) {
        return ops::concat({in[0], in[0]}, 0);
      },
      {leaf({2, 3}, generator)}));
}

}  // namespace
}  // namespace topkformer
