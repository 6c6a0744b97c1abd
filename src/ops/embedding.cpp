#include "topkformer/ops.h"

#include "op_support.h"

namespace topkformer::ops {

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  TKF_CHECK(weight.dim() == 2, "embedding: weight must be [V, D], got ", shape_str(weight.shape()));
  TKF_CHECK(is_index(ids.dtype()), "embedding: ids must be i32 or i64, got ",
            dtype_name(ids.dtype()), " of shape ", shape_str(ids.shape()));
  // An embedding is a gather of rows from a single group. Token ids may come
  // from the host: they follow the table to its device (docs/cuda.md).
  const Tensor rows =
      gather_rows(unsqueeze(weight, 0), ids.to(weight.device()).reshape({1, ids.numel()}));
  Shape shape = ids.shape();
  shape.push_back(weight.size(1));
  return reshape(rows, shape);
}

}  // namespace topkformer::ops
