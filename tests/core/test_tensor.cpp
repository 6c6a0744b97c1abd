// Tensor core: factories, views sharing storage, contiguous copies, element
// access, printing and the errors for bad shapes and dtypes.
#include <gtest/gtest.h>

#include "test_util.h"
#include "topkformer/core/tensor.h"

namespace topkformer {
namespace {

using testing::expect_error_containing;

Tensor iota(const Shape& shape) {
  return Tensor::arange(0, double(shape_numel(shape)), 1, DType::f32).view(shape);
}

TEST(TensorFactories, ShapesDtypesAndValues) {
  const Tensor zeros = Tensor::zeros({2, 3});
  EXPECT_EQ(zeros.shape(), (Shape{2, 3}));
  EXPECT_EQ(zeros.strides(), (Strides{3, 1}));
  EXPECT_EQ(zeros.dtype(), DType::f32);
  EXPECT_TRUE(zeros.device().is_cpu());
  EXPECT_EQ(zeros.nbytes(), 24u);
  for (float v : zeros.to_vector<float>()) EXPECT_EQ(v, 0.0f);
  for (double v : Tensor::ones({4}, DType::f64).to_vector<double>()) EXPECT_EQ(v, 1.0);
  for (std::int32_t v : Tensor::full({3}, 7, DType::i32).to_vector<std::int32_t>()) EXPECT_EQ(v, 7);
  EXPECT_EQ(Tensor::arange(2, 11, 3).to_vector<std::int64_t>(),
            (std::vector<std::int64_t>{2, 5, 8}));
  EXPECT_EQ(Tensor::arange(0, 1, 0.25, DType::f64).to_vector<double>(),
            (std::vector<double>{0, 0.25, 0.5, 0.75}));
  EXPECT_EQ(Tensor::empty({0, 5}).numel(), 0);
  EXPECT_EQ(Tensor::from_vector<std::uint8_t>({2}, {1, 255}).value_at({1}), 255.0);
}

TEST(TensorFactories, RandomTensorsComeFromTheGenerator) {
  Generator first(42), second(42);
  const Tensor a = Tensor::randn({5, 7}, first);
  const Tensor b = Tensor::randn({5, 7}, second);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
  EXPECT_EQ(first.state().offset, 2u * 35u);  // two Philox words per normal
  const Tensor c = Tensor::randn({5, 7}, first);
  EXPECT_NE(a.to_vector<float>(), c.to_vector<float>());
  const Tensor u = Tensor::rand({1000}, first, DType::f64, -2.0, 3.0);
  for (double v : u.to_vector<double>()) {
    EXPECT_GE(v, -2.0);
    EXPECT_LT(v, 3.0);
  }
}

TEST(TensorViews, ShareStorageAndCopyNothing) {
  const Tensor base = iota({4, 6});
  const std::int64_t before = allocator_for(Device::cpu()).allocation_count();
  const Tensor reshaped = base.view({2, 12});
  const Tensor inferred = base.reshape({3, -1});
  const Tensor narrowed = base.narrow(1, 2, 3);
  const Tensor stepped = base.slice(1, 1, 6, 2);
  const Tensor transposed = base.transpose(0, 1);
  const Tensor permuted = base.view({2, 2, 6}).permute({2, 0, 1});
  const Tensor expanded = base.narrow(0, 0, 1).expand({5, 6});
  const Tensor row = base.select(0, 2);
  EXPECT_EQ(allocator_for(Device::cpu()).allocation_count(), before);
  for (const Tensor* view :
       {&reshaped, &inferred, &narrowed, &stepped, &transposed, &permuted, &expanded, &row}) {
    EXPECT_TRUE(view->shares_storage_with(base));
  }
  EXPECT_EQ(inferred.shape(), (Shape{3, 8}));
  EXPECT_EQ(narrowed.value_at({1, 0}), 8.0);  // row 1, column 2
  EXPECT_EQ(stepped.shape(), (Shape{4, 3}));
  EXPECT_EQ(stepped.value_at({2, 2}), 17.0);  // row 2, column 5
  EXPECT_EQ(transposed.value_at({5, 3}), 23.0);
  EXPECT_EQ(permuted.shape(), (Shape{6, 2, 2}));
  EXPECT_EQ(permuted.value_at({4, 1, 0}), 16.0);
  EXPECT_EQ(expanded.stride(0), 0);
  EXPECT_EQ(expanded.value_at({4, 5}), 5.0);
  EXPECT_EQ(row.to_vector<float>(), (std::vector<float>{12, 13, 14, 15, 16, 17}));
  EXPECT_EQ(base.unsqueeze(1).shape(), (Shape{4, 1, 6}));
  EXPECT_EQ(base.unsqueeze(-1).shape(), (Shape{4, 6, 1}));
  EXPECT_EQ(base.unsqueeze(0).squeeze(0).shape(), base.shape());

  // Writing through a view changes the base.
  narrowed.at<float>({0, 0}) = -1.0f;
  EXPECT_EQ(base.value_at({0, 2}), -1.0);
}

TEST(TensorViews, ContiguityAndCopies) {
  const Tensor base = iota({3, 4});
  EXPECT_TRUE(base.is_contiguous());
  EXPECT_TRUE(base.narrow(0, 1, 2).is_contiguous());  // whole rows
  EXPECT_FALSE(base.narrow(1, 1, 2).is_contiguous());
  EXPECT_FALSE(base.transpose(0, 1).is_contiguous());
  EXPECT_TRUE(base.contiguous().same_tensor(base));  // no copy when already contiguous

  const Tensor packed = base.transpose(0, 1).contiguous();
  EXPECT_TRUE(packed.is_contiguous());
  EXPECT_FALSE(packed.shares_storage_with(base));
  EXPECT_EQ(packed.to_vector<float>(), (std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  // reshape of non-contiguous data copies; view refuses.
  EXPECT_FALSE(base.transpose(0, 1).reshape({12}).shares_storage_with(base));
  expect_error_containing([&] { base.transpose(0, 1).view({12}); }, {"view", "not contiguous"});

  const Tensor clone = base.clone();
  clone.at<float>({0, 0}) = 100.0f;
  EXPECT_EQ(base.value_at({0, 0}), 0.0);

  const Tensor as_double = base.narrow(1, 1, 2).to(DType::f64);
  EXPECT_EQ(as_double.dtype(), DType::f64);
  EXPECT_EQ(as_double.to_vector<double>(), (std::vector<double>{1, 2, 5, 6, 9, 10}));
  EXPECT_EQ(
      Tensor::from_vector<float>({3}, {1.7f, -2.2f, 3.9f}).to(DType::i32).to_vector<std::int32_t>(),
      (std::vector<std::int32_t>{1, -2, 3}));

  Tensor target = Tensor::zeros({4, 3});
  target.copy_(base.transpose(0, 1));
  EXPECT_EQ(target.to_vector<float>(), packed.to_vector<float>());
  Tensor strided_target = Tensor::zeros({3, 4});
  strided_target.transpose(0, 1).fill_(5.0);
  for (float v : strided_target.to_vector<float>()) EXPECT_EQ(v, 5.0f);
}

TEST(TensorAccess, ItemValueAtAndDtypeChecks) {
  const Tensor scalar = Tensor::full({}, 3.5, DType::f64);
  EXPECT_EQ(scalar.dim(), 0);
  EXPECT_EQ(scalar.numel(), 1);
  EXPECT_EQ(scalar.item(), 3.5);
  expect_error_containing([] { Tensor::zeros({2}).item(); }, {"item", "[2]"});
  expect_error_containing(
      [] {
        Tensor::zeros({2, 3}).data<double>();
      },
      {"Tensor::data", "f64", "f32", "[2, 3]"});
  expect_error_containing(
      [] {
        Tensor::zeros({2, 3}).value_at({2, 0});
      },
      {"index 2", "dimension 0", "[2, 3]"});
  expect_error_containing([] { Tensor::zeros({2, 3}).value_at({1}); }, {"1 indices", "[2, 3]"});
}

TEST(TensorErrors, BadShapesNameTheOperationAndShapes) {
  const Tensor t = Tensor::zeros({2, 3});
  expect_error_containing([&] { t.view({4, 2}); }, {"Tensor::view", "[2, 3]", "[4, 2]"});
  expect_error_containing([&] { t.view({-1, -1}); }, {"Tensor::view", "-1"});
  expect_error_containing([&] { t.narrow(1, 2, 2); }, {"Tensor::slice", "[2, 3]"});
  expect_error_containing([&] { t.expand({4, 2}); }, {"Tensor::expand", "[2, 3]", "[4, 2]"});
  expect_error_containing([&] { t.permute({0, 0}); }, {"Tensor::permute", "twice"});
  expect_error_containing([&] { t.transpose(0, 2); }, {"Tensor::transpose", "dimension 2"});
  expect_error_containing([&] { t.squeeze(1); }, {"Tensor::squeeze", "[2, 3]"});
  expect_error_containing(
      [&] {
        Tensor::zeros({2, 3}).copy_(Tensor::zeros({3, 2}));
      },
      {"Tensor::copy_", "[2, 3]", "[3, 2]"});
  expect_error_containing([] { Tensor::empty({2, -1}); }, {"Tensor::empty", "[2, -1]"});
  expect_error_containing([] { Tensor().shape(); }, {"undefined"});
}

TEST(TensorPrinting, ShowsDtypeShapeAndValues) {
  EXPECT_EQ(iota({2, 2}).str(), "Tensor(f32, [2, 2], cpu) [[0, 1], [2, 3]]");
  EXPECT_EQ(Tensor::full({}, 2.5, DType::f64).str(), "Tensor(f64, [], cpu) 2.5");
  EXPECT_EQ(iota({10}).str(4), "Tensor(f32, [10], cpu) [0, 1, ..., 8, 9]");
  EXPECT_EQ(Tensor().str(), "Tensor(undefined)");
}

TEST(Device, ParsesNames) {
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_EQ(Device::parse("cuda"), Device::cuda(0));
  EXPECT_EQ(Device::parse("cuda:3"), Device::cuda(3));
  EXPECT_EQ(Device::cuda(1).str(), "cuda:1");
  expect_error_containing([] { Device::parse("gpu"); }, {"device", "'gpu'"});
  expect_error_containing([] { Device::parse("cuda:x"); }, {"'cuda:x'"});
}

}  // namespace
}  // namespace topkformer
