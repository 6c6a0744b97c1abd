#include "kernels/cross_entropy.h"

namespace topkformer::kernels {

void check_cross_entropy_inputs(const Tensor& logits, const Tensor& targets, const char* op) {
  TKF_CHECK(logits.dim() == 2 && logits.is_contiguous() && targets.is_contiguous() &&
                targets.numel() == logits.size(0),
            op, ": expected contiguous logits [N, C] and targets [N], got ",
            shape_str(logits.shape()), " and ", shape_str(targets.shape()));
}

void check_cross_entropy_target(std::int64_t target, std::int64_t row, std::int64_t classes,
                                std::int64_t ignore_index) {
  TKF_CHECK(target == ignore_index || (target >= 0 && target < classes), "cross_entropy: target ",
            target, " of row ", row, " is outside [0, ", classes, ") and is not the ignore index ",
            ignore_index);
}

}  // namespace topkformer::kernels
