#include "topkformer/nn/feed_forward.h"

#include "topkformer/attention/functional.h"
#include "topkformer/autograd/recompute.h"
#include "topkformer/kernels/backend.h"
#include "topkformer/ops.h"

namespace topkformer::nn {

FeedForward::FeedForward(std::int64_t d_model, std::int64_t d_ff, const FeedForwardConfig& config,
                         Generator& init, DType dtype) {
  fc1_ = register_module("fc1", std::make_shared<Linear>(d_model, d_ff, true, init, 0.02, dtype));
  fc2_ = register_module("fc2", std::make_shared<Linear>(d_ff, d_model, true, init, 0.02, dtype));
  set_config(config);
}

void FeedForward::set_config(const FeedForwardConfig& config) {
  TKF_CHECK(config.chunk_size >= 1 && config.k >= 1,
            "FeedForward: chunk_size and k must be >= 1, got ", config.chunk_size, " and ",
            config.k);
  config_ = config;
}

Tensor FeedForward::dense_forward(const Tensor& rows) const {
  const Tensor hidden = fc1_->forward(rows);
  const Tensor activated = config_.activation == Activation::relu
                               ? ops::relu(hidden)
                               : ops::gelu(hidden, ops::GeluApproximation::erf);
  return fc2_->forward(activated);
}

Tensor FeedForward::forward(const Tensor& x) {
  const std::int64_t d_model = fc1_->weight().size(1);
  TKF_CHECK(x.dim() >= 1 && x.size(-1) == d_model, "FeedForward: input ", shape_str(x.shape()),
            " does not end in d_model ", d_model);
  const Tensor rows = ops::reshape(x, {-1, d_model});
  Tensor out;
  switch (config_.kind) {
    case FeedForwardKind::dense:
      out = dense_forward(rows);
      break;
    case FeedForwardKind::chunked: {
      // One chunk of tokens at a time, keeping only the chunk's input: the
      // [chunk, d_ff] hidden activations are recomputed in the backward pass.
      std::vector<Tensor> chunks;
      for (std::int64_t first = 0; first < rows.size(0); first += config_.chunk_size) {
        const std::int64_t count = std::min(config_.chunk_size, rows.size(0) - first);
        chunks.push_back(autograd::recompute(
            [this](const std::vector<Tensor>& in) {
              return std::vector<Tensor>{dense_forward(in[0])};
            },
            {ops::narrow(rows, 0, first, count)})[0]);
      }
      out = chunks.size() == 1 ? chunks[0] : ops::concat(chunks, 0);
      break;
    }
    case FeedForwardKind::topk:
      out = ops::add(attention::topk_feed_forward(rows, fc1_->weight(), fc1_->bias(),
                                                  fc2_->weight(), config_.k, config_.chunk_size,
                                                  config_.activation == Activation::relu
                                                      ? kernels::UnaryOp::relu
                                                      : kernels::UnaryOp::gelu_erf),
                     fc2_->bias());
      break;
    case FeedForwardKind::count:
      throw Error("FeedForward: count is not a feed-forward kind");
  }
  Shape shape = x.shape();
  return ops::reshape(out, shape);
}

}  // namespace topkformer::nn
