#include "kernels/random.h"

#include <cmath>

namespace topkformer::kernels {

DropoutPlan check_dropout(const Tensor& x, double p, const DropoutAddressing& addressing,
                          const Tensor& out) {
  TKF_CHECK(x.is_contiguous() && out.is_contiguous(), "dropout: operands must be contiguous");
  check_same_shape(x, out, "dropout");
  check_same_dtype(x, out, "dropout");
  TKF_CHECK(p >= 0.0 && p < 1.0, "dropout: probability must be in [0, 1), got ", p);
  DropoutPlan plan;
  if (x.numel() == 0) return plan;
  plan.n = x.size(-1);
  plan.row_words = addressing.row_words > 0 ? addressing.row_words : plan.n;
  if (addressing.columns.defined()) {
    TKF_CHECK(addressing.columns.numel() == x.numel(), "dropout: columns ",
              shape_str(addressing.columns.shape()), " do not match x ", shape_str(x.shape()));
  }
  // keep iff uniform_f32(word) >= p, compared exactly: uniform_f32 is
  // (word >> 8) / 2^24, so this is an integer comparison on every device.
  plan.threshold = static_cast<std::uint32_t>(std::ceil(p * 0x1p24));
  return plan;
}

}  // namespace topkformer::kernels
