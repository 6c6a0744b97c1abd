#include "topkformer/dist/gradient_reducer.h"

#include "topkformer/autograd/grad_mode.h"
#include "topkformer/autograd/tape.h"

namespace topkformer::dist {

GradientReducer::GradientReducer(Communicator& communicator, std::vector<Tensor> parameters,
                                 std::int64_t bucket_bytes)
    : communicator_(communicator), parameters_(std::move(parameters)) {
  for (std::size_t p = 0; p < parameters_.size(); ++p) {
    const Tensor& parameter = parameters_[p];
    const auto bytes = std::int64_t(parameter.element_size());
    if (buckets_.empty() || buckets_.back().dtype != parameter.dtype() ||
        (buckets_.back().elements + parameter.numel()) * bytes > bucket_bytes) {
      buckets_.push_back({parameter.dtype(), {}, 0});
    }
    buckets_.back().members.push_back(p);
    buckets_.back().elements += parameter.numel();
  }
}

void GradientReducer::average() {
  if (communicator_.world_size() == 1) return;
  autograd::NoGradGuard no_grad;
  // Which parameters have a gradient on some rank: all ranks must then take
  // part in its reduction, and those without one contribute zeros.
  const auto count = static_cast<std::int64_t>(parameters_.size());
  Tensor present = Tensor::zeros({count}, DType::i32);
  for (std::int64_t p = 0; p < count; ++p) {
    present.at<std::int32_t>({p}) = parameters_[std::size_t(p)].grad().defined() ? 1 : 0;
  }
  communicator_.all_reduce(present, ReduceOp::max);
  for (std::int64_t p = 0; p < count; ++p) {
    Tensor& parameter = parameters_[std::size_t(p)];
    if (present.at<std::int32_t>({p}) && !parameter.grad().defined()) {
      autograd::accumulate_grad(
          *parameter.autograd_meta(),
          Tensor::zeros(parameter.shape(), parameter.dtype(), parameter.device()));
    }
  }

  // The buckets live where the parameters do (all on one device), so that
  // NCCL reduces CUDA gradients on their GPU.
  const Device device = parameters_.empty() ? Device::cpu() : parameters_.front().device();
  for (const Bucket& bucket : buckets_) {
    const Tensor buffer = Tensor::zeros({bucket.elements}, bucket.dtype, device);
    const auto for_each_gradient = [&](const auto& visit) {
      std::int64_t offset = 0;
      for (std::size_t p : bucket.members) {
        const Tensor grad = parameters_[p].grad();
        const std::int64_t size = parameters_[p].numel();
        if (grad.defined()) visit(grad, buffer.narrow(0, offset, size).view(grad.shape()));
        offset += size;
      }
    };
    for_each_gradient([](const Tensor& grad, Tensor slot) { slot.copy_(grad); });
    communicator_.all_reduce(buffer, ReduceOp::average);
    for_each_gradient([](Tensor grad, const Tensor& slot) { grad.copy_(slot); });
  }
}

}  // namespace topkformer::dist
