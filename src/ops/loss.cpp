#include "topkformer/ops.h"

#include "op_support.h"

namespace topkformer::ops {

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, std::int64_t ignore_index,
                     double label_smoothing) {
  check_floating(logits, "cross_entropy");
  TKF_CHECK(is_index(targets.dtype()), "cross_entropy: targets must be i32 or i64, got ",
            dtype_name(targets.dtype()));
  TKF_CHECK(logits.dim() >= 1 && targets.numel() * logits.size(-1) == logits.numel(),
            "cross_entropy: logits ", shape_str(logits.shape()), " do not match targets ",
            shape_str(targets.shape()));
  TKF_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0,
            "cross_entropy: label_smoothing must be in [0, 1], got ", label_smoothing);
  const std::int64_t classes = logits.size(-1);
  const Tensor flat_logits = logits.contiguous().view({-1, classes});
  // Targets may come from the host: they follow the logits to their device.
  const Tensor flat_targets = targets.to(logits.device()).contiguous().view({-1});
  const std::int64_t rows = flat_logits.size(0);

  Tensor losses = empty_like(logits, {rows});
  Tensor logsumexp = empty_like(logits, {rows});
  backend_of(logits).cross_entropy(flat_logits, flat_targets, ignore_index, label_smoothing, losses,
                                   logsumexp);
  std::int64_t counted = 0;
  for (std::int64_t t : flat_targets.to(DType::i64).to_vector<std::int64_t>()) {
    counted += t != ignore_index;
  }
  // The mean over counted rows; ignored rows hold 0.
  const double inverse_count = counted > 0 ? 1.0 / double(counted) : 0.0;
  Tensor total = empty_like(logits, {1});
  backend_of(logits).sum_rows(losses.view({1, rows}), total);
  Tensor loss = empty_like(logits, {});
  backend_of(logits).affine(total.view({}), inverse_count, 0.0, loss);

  return autograd::record("cross_entropy", {logits}, loss,
                          [flat_logits, flat_targets, logsumexp, ignore_index, label_smoothing,
                           inverse_count, shape = logits.shape()](const auto& g) {
                            const double upstream = g[0].item();
                            Tensor dlogits = empty_like(flat_logits);
                            backend_of(flat_logits)
                                .cross_entropy_backward(flat_logits, flat_targets, logsumexp,
                                                        ignore_index, label_smoothing,
                                                        upstream * inverse_count, dlogits);
                            return std::vector<Tensor>{dlogits.view(shape)};
                          });
}

}  // namespace topkformer::ops
