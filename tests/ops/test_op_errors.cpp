// Errors for bad shapes, dtypes and indices: each message must name the op
// and the offending shapes or values, so that a log line is enough to find
// the cause.
#include <gtest/gtest.h>

#include "test_util.h"
#include "topkformer/ops.h"

namespace topkformer {
namespace {

using testing::expect_error_containing;

Tensor f64(const Shape& shape) {
  return Tensor::zeros(shape, DType::f64);
}
Tensor i64(const Shape& shape, const std::vector<std::int64_t>& values) {
  return Tensor::from_vector(shape, values);
}

TEST(OpErrors, BinaryOpsNameTheOpAndBothShapes) {
  const Tensor a = f64({2, 3}), b = f64({4});
  expect_error_containing([&] { ops::add(a, b); }, {"add", "[2, 3]", "[4]"});
  expect_error_containing([&] { ops::sub(a, b); }, {"sub", "[2, 3]", "[4]"});
  expect_error_containing([&] { ops::mul(b, a); }, {"mul", "[4]", "[2, 3]"});
  expect_error_containing([&] { ops::div(a, f64({3, 3})); }, {"div", "[2, 3]", "[3, 3]"});
}

TEST(OpErrors, MixedDtypesNameTheDtypes) {
  const Tensor a = Tensor::zeros({2}, DType::f32), b = f64({2});
  expect_error_containing([&] { ops::add(a, b); }, {"add", "dtype", "f32", "f64"});
  expect_error_containing(
      [&] {
        ops::matmul(f64({2, 2}), Tensor::zeros({2, 2}));
      },
      {"matmul", "dtype"});
  expect_error_containing([&] { ops::concat({a, b}, 0); }, {"concat", "dtype"});
}

TEST(OpErrors, IntegerInputsToFloatingOps) {
  const Tensor ints = i64({3}, {1, 2, 3});
  expect_error_containing([&] { ops::exp(ints); }, {"exp", "i64", "[3]"});
  expect_error_containing([&] { ops::sum(ints); }, {"sum", "i64"});
  expect_error_containing([&] { ops::softmax(ints); }, {"softmax", "i64"});
}

TEST(OpErrors, MatmulShapes) {
  expect_error_containing(
      [] {
        ops::matmul(f64({2, 3}), f64({4, 5}));
      },
      {"matmul", "[2, 3]", "[4, 5]"});
  // With a transpose flag the message marks the transposed operand.
  expect_error_containing(
      [] {
        ops::matmul(f64({2, 3}), f64({4, 5}), true, false);
      },
      {"matmul", "[2, 3]^T", "[4, 5]"});
  expect_error_containing([] { ops::matmul(f64({3}), f64({3, 2})); }, {"matmul", "[3]", "rank"});
  expect_error_containing(
      [] {
        ops::matmul(f64({2, 3, 4}), f64({3, 4, 5}));
      },
      {"matmul", "broadcast"});
  expect_error_containing(
      [] {
        ops::linear(f64({2, 3}), f64({5, 4}));
      },
      {"linear", "[2, 3]", "[5, 4]"});
}

TEST(OpErrors, LayerNormParameters) {
  expect_error_containing(
      [] {
        ops::layer_norm(f64({2, 4}), f64({3}), f64({4}));
      },
      {"layer_norm", "[2, 4]", "[3]", "[4]"});
  expect_error_containing(
      [] {
        ops::layer_norm(f64({2, 4}), f64({4}), f64({4, 1}));
      },
      {"layer_norm", "[4, 1]"});
  expect_error_containing(
      [] {
        ops::layer_norm(f64({2, 4}), Tensor::ones({4}, DType::f32), f64({4}));
      },
      {"layer_norm", "dtype"});
}

TEST(OpErrors, EmbeddingIdsAndWeight) {
  const Tensor weight = f64({5, 3});
  expect_error_containing(
      [&] {
        ops::embedding(weight, i64({2}, {1, 7}));
      },
      {"7", "out of range", "[0, 5)"});
  expect_error_containing([&] { ops::embedding(weight, i64({2}, {-1, 0})); }, {"-1", "[0, 5)"});
  expect_error_containing([&] { ops::embedding(weight, f64({2})); }, {"embedding", "f64"});
  expect_error_containing([&] { ops::embedding(f64({5}), i64({1}, {0})); }, {"embedding", "[5]"});
}

TEST(OpErrors, CrossEntropyTargets) {
  const Tensor logits = f64({2, 3, 5});
  expect_error_containing(
      [&] {
        ops::cross_entropy(logits, i64({2, 4}, std::vector<std::int64_t>(8)));
      },
      {"cross_entropy", "[2, 3, 5]", "[2, 4]"});
  expect_error_containing(
      [&] {
        ops::cross_entropy(logits, i64({2, 3}, {0, 1, 5, 2, 3, 4}));
      },
      {"cross_entropy", "target 5", "[0, 5)"});
  expect_error_containing(
      [&] {
        ops::cross_entropy(logits, f64({2, 3}));
      },
      {"cross_entropy", "f64"});
  expect_error_containing(
      [&] {
        ops::cross_entropy(logits, i64({2, 3}, {0, 0, 0, 0, 0, 0}), -100, 1.5);
      },
      {"cross_entropy", "label_smoothing", "1.5"});
}

TEST(OpErrors, IndexOps) {
  expect_error_containing([] { ops::topk(f64({2, 6}), 7); }, {"topk", "k = 7", "[2, 6]"});
  expect_error_containing([] { ops::topk(f64({2, 6}), 0); }, {"topk", "k = 0"});
  expect_error_containing(
      [] {
        ops::gather_rows(f64({2, 5, 3}), i64({3, 1}, {0, 0, 0}));
      },
      {"gather_rows", "[2, 5, 3]", "[3, 1]"});
  expect_error_containing(
      [] {
        ops::gather_rows(f64({1, 5, 3}), i64({1, 2}, {0, 5}));
      },
      {"gather_rows", "index 5", "[0, 5)"});
  expect_error_containing(
      [] {
        ops::scatter_add_rows(f64({2, 5, 3}), i64({2, 1}, {0, 0}), f64({2, 1, 4}));
      },
      {"scatter_add_rows", "[2, 1, 4]", "[2, 5, 3]"});
}

TEST(OpErrors, ShapeAndMaskArguments) {
  expect_error_containing(
      [] {
        ops::concat({f64({2, 3}), f64({2, 4})}, 0);
      },
      {"concat", "[2, 3]", "[2, 4]"});
  expect_error_containing([] { ops::transpose(f64({2, 3}), 0, 2); }, {"transpose", "dimension 2"});
  expect_error_containing([] { ops::dropout(f64({4}), 1.0, PhiloxState{}); },
                          {"dropout", "[0, 1)"});
  ops::RowMask mask;
  mask.key_lengths = i64({3}, {1, 2, 3});
  expect_error_containing(
      [&] {
        ops::softmax(f64({2, 4, 4}), mask);
      },
      {"softmax", "key_lengths", "[2, 4, 4]"});
}

}  // namespace
}  // namespace topkformer
