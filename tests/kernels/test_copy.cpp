// copy between every pair of dtypes and between strided views (transposed,
// padded, sliced, stride-0 sources), leaving the rest of a destination's
// storage untouched; and the rounding of f64 -> f32.
#include <string>

#include "kernels/reference.h"

namespace topkformer::testing {
namespace {

const DType all_dtypes[] = {DType::f32, DType::f64, DType::i32, DType::i64, DType::u8};

// Marks storage outside a destination view; not among the copied values (0..99).
constexpr double sentinel = 123.0;

struct View {
  Tensor base, view;  // view is a [rows, cols] window of base's storage
};

// A [rows, cols] view in `layout` of a base tensor holding `fill` everywhere.
View make_view(Layout layout, std::int64_t rows, std::int64_t cols, DType dtype, double fill) {
  const auto base_of = [&](const Shape& shape) {
    return tensor_of(shape, std::vector<double>(std::size_t(shape_numel(shape)), fill), dtype);
  };
  switch (layout) {
    case Layout::transposed: {
      const Tensor base = base_of({cols, rows});
      return {base, base.transpose(0, 1)};
    }
    case Layout::padded: {
      const Tensor base = base_of({rows, cols + 5});
      return {base, base.narrow(1, 2, cols)};
    }
    case Layout::every_other: {
      const Tensor base = base_of({2 * rows, 2 * cols});
      return {base, base.slice(0, 1, 2 * rows, 2).slice(1, 0, 2 * cols, 2)};
    }
    case Layout::row_broadcast: {
      const Tensor base = base_of({1, cols});
      return {base, base.expand({rows, cols})};
    }
    default: {
      const Tensor base = base_of({rows, cols});
      return {base, base};
    }
  }
}

// Source values 0..99, exact in every dtype; a broadcast source repeats its row.
std::vector<double> source_values(std::int64_t count) {
  std::vector<double> values;
  for (std::int64_t e = 0; e < count; ++e) values.push_back(double((e * 37 + 11) % 100));
  return values;
}

TEST(CopyKernel, EveryDtypePairAndLayoutPairCopiesValues) {
  const std::int64_t rows = 3, cols = 17;
  const Layout source_layouts[] = {Layout::contiguous, Layout::transposed, Layout::every_other,
                                   Layout::row_broadcast};
  const Layout destination_layouts[] = {Layout::contiguous, Layout::transposed, Layout::padded,
                                        Layout::every_other};
  for (const DType from : all_dtypes) {
    for (const DType to : all_dtypes) {
      for (const Layout src_layout : source_layouts) {
        for (const Layout dst_layout : destination_layouts) {
          const View src = make_view(src_layout, rows, cols, from, 0.0);
          write_values(src.base, source_values(src.base.numel()));
          const View dst = make_view(dst_layout, rows, cols, to, sentinel);
          cpu_kernels().copy(src.view, dst.view);
          const std::string what = std::string(dtype_name(from)) + " " + layout_name(src_layout) +
                                   " -> " + std::string(dtype_name(to)) + " " +
                                   layout_name(dst_layout);
          EXPECT_EQ(read_values(dst.view), read_values(src.view)) << what;
          const std::vector<double> base = read_values(dst.base);
          EXPECT_EQ(std::count(base.begin(), base.end(), sentinel), dst.base.numel() - rows * cols)
              << what << ": storage outside the view was written";
        }
      }
    }
  }
}

TEST(CopyKernel, DoubleToFloatRoundsToNearest) {
  const Tensor src = random_normal({5, 33}, DType::f64, 130, 1e3);
  const Tensor dst = Tensor::empty({33, 5}, DType::f32).transpose(0, 1);
  cpu_kernels().copy(src, dst);
  std::vector<double> want = read_values(src);
  for (double& v : want) v = static_cast<float>(v);
  EXPECT_EQ(read_values(dst), want);
}

TEST(CopyKernel, RankFourPermutedSourceToContiguous) {
  const Tensor src = random_normal({2, 5, 3, 4}, DType::f32, 131).permute({0, 2, 1, 3});
  const Tensor dst = Tensor::empty({2, 3, 5, 4}, DType::f64);
  cpu_kernels().copy(src, dst);
  EXPECT_EQ(read_values(dst), read_values(src));
}

}  // namespace
}  // namespace topkformer::testing
