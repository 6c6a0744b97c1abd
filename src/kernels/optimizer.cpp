#include "kernels/optimizer.h"

namespace topkformer::kernels {

void check_update_operands(std::initializer_list<const Tensor*> operands, const char* op) {
  const Tensor& first = **operands.begin();
  for (const Tensor* t : operands) {
    TKF_CHECK(t->is_contiguous(), op, ": operands must be contiguous");
    check_same_shape(first, *t, op);
    check_same_dtype(first, *t, op);
  }
}

}  // namespace topkformer::kernels
