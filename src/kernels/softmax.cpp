#include "kernels/softmax.h"

#include "kernels/dispatch.h"

namespace topkformer::kernels {

RowMaskRule row_mask_rule(const Tensor& x, const RowMask& mask, const char* op) {
  RowMaskRule rule;
  rule.keys = x.size(-1);
  rule.queries = x.dim() >= 2 ? x.size(-2) : 1;
  rule.causal = mask.causal;
  rule.causal_offset = mask.causal_offset;
  if (mask.key_lengths.defined()) {
    const std::int64_t batch = mask.key_lengths.numel();
    TKF_CHECK(x.dim() >= 2 && x.size(0) == batch, op, ": key_lengths has ", batch,
              " entries but the scores have shape ", shape_str(x.shape()));
    rule.rows_per_item = row_count(x) / batch;
  }
  return rule;
}

}  // namespace topkformer::kernels
