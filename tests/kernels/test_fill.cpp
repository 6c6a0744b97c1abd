// fill on strided views of every dtype (storage outside the view untouched)
// and arange, whose element i is start + i * step computed without drift.
#include <string>

#include "kernels/reference.h"

namespace topkformer::testing {
namespace {

const DType all_dtypes[] = {DType::f32, DType::f64, DType::i32, DType::i64, DType::u8};

TEST(FillKernel, StridedViewsOfEveryDtype) {
  for (const DType dtype : all_dtypes) {
    const Tensor base = tensor_of({6, 10}, std::vector<double>(60, 7.0), dtype);
    const Tensor views[] = {base.slice(0, 1, 6, 2).slice(1, 0, 10, 3),  // [3, 4], strides (20, 3)
                            base.narrow(1, 2, 5).transpose(0, 1),       // [5, 6], strides (1, 10)
                            base.select(1, 9),                          // a column
                            base.narrow(0, 2, 3)};                      // contiguous rows
    double value = 40.0;
    for (const Tensor& view : views) {
      value += 1.0;
      const std::vector<double> before = read_values(base);
      cpu_kernels().fill(view, value);
      EXPECT_EQ(read_values(view), std::vector<double>(std::size_t(view.numel()), value))
          << dtype_name(dtype) << " " << shape_str(view.strides());
      // Every storage element outside the view keeps its value.
      std::vector<double> want = before;
      for (const std::int64_t position : element_positions(view)) want[position] = value;
      EXPECT_EQ(read_values(base), want) << dtype_name(dtype) << " " << shape_str(view.strides());
    }
  }
}

TEST(FillKernel, FractionalValueInFloatingViews) {
  for (const DType dtype : {DType::f32, DType::f64}) {
    const Tensor view = Tensor::zeros({4, 9}, dtype).slice(1, 1, 9, 2);
    cpu_kernels().fill(view, -1.25);
    EXPECT_EQ(read_values(view), std::vector<double>(16, -1.25));
  }
}

// Computing start + i * step per element (not by repeated addition) makes
// element i the nearest value of the dtype; 0.1 is not exact in binary, so
// accumulated steps would drift away from it.
TEST(ArangeKernel, ElementIIsStartPlusIStepInEveryDtype) {
  struct Case {
    DType dtype;
    double start, step;
  };
  const Case cases[] = {{DType::f32, -3.0, 0.1},
                        {DType::f64, -3.0, 0.1},
                        {DType::f64, 1e6, -7.5},
                        {DType::i32, 5.0, 3.0},
                        {DType::i64, -40.0, 2.0}};
  for (const Case& c : cases) {
    for (const std::int64_t n : {1, 17, 1000}) {
      const Tensor dst = Tensor::empty({n}, c.dtype);
      cpu_kernels().arange(dst, c.start, c.step);
      std::vector<double> want(static_cast<std::size_t>(n));
      const Tensor exact = tensor_of({n}, want, c.dtype);  // for the dtype's rounding
      for (std::int64_t i = 0; i < n; ++i) want[i] = c.start + double(i) * c.step;
      write_values(exact, want);
      EXPECT_EQ(read_values(dst), read_values(exact)) << dtype_name(c.dtype) << " n " << n;
    }
  }
}

}  // namespace
}  // namespace topkformer::testing
