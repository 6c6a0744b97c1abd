#include "topkformer/autograd/function.h"
#include "topkformer/ops.h"
#include "variant_support.h"

namespace topkformer::attention {

namespace {

using kernels::Backend;
using kernels::UnaryOp;

class TopKFeedForwardFunction final : public autograd::Function {
 public:
  TopKFeedForwardFunction(std::int64_t top_k, std::int64_t chunk_size, UnaryOp activation)
      : top_k_(top_k), chunk_size_(chunk_size), activation_(activation) {}

  std::string name() const override { return "topk_feed_forward"; }

  std::vector<Tensor> forward(const std::vector<Tensor>& inputs) override {
    x_ = inputs[0];
    w1_ = inputs[1];
    const Tensor& b1 = inputs[2];
    const std::int64_t tokens = x_.size(0), keys = w1_.size(0), width = x_.size(1);
    const std::int64_t kept = std::min(top_k_, keys);
    Backend& backend = kernels::backend(x_.device());
    // Values are the columns of w2: as rows [F, D] they are what the gathers read.
    w2_rows_ = inputs[3].transpose(0, 1).contiguous();
    top_scores_ = Tensor::empty({1, tokens, kept}, x_.dtype(), x_.device());
    top_keys_ = Tensor::empty({1, tokens, kept}, DType::i32, x_.device());
    for (std::int64_t first = 0; first < tokens; first += chunk_size_) {
      const std::int64_t count = std::min(chunk_size_, tokens - first);
      const Tensor scores = Tensor::empty({count, keys}, x_.dtype(), x_.device());
      backend.gemm(x_.narrow(0, first, count), false, w1_, true, scores, 1.0, 0.0);
      backend.binary(kernels::BinaryOp::add, scores, b1.expand({count, keys}), scores);
      keep_top_k(scores, kept, top_scores_.select(0, 0).narrow(0, first, count),
                 top_keys_.select(0, 0).narrow(0, first, count));
    }
    Tensor out = Tensor::empty({1, tokens, width}, x_.dtype(), x_.device());
    backend.sparse_gather_sum(activated(), top_keys_, w2_rows_.unsqueeze(0), out);
    return {out.view({tokens, width})};
  }

  std::vector<Tensor> backward(const std::vector<Tensor>& grad_outputs) override {
    Backend& backend = kernels::backend(x_.device());
    const std::int64_t tokens = x_.size(0), keys = w1_.size(0), width = x_.size(1);
    const Tensor d_out = grad_outputs[0].contiguous().view({1, tokens, width});
    const Tensor weights = activated();
    // out_i = sum_j a_ij w2_rows[idx_ij]. The order below frees each
    // parameter-sized buffer as early as possible: this layer's point is memory.
    Tensor d_weights = Tensor::empty(weights.shape(), weights.dtype(), weights.device());
    backend.sparse_gather_dot(d_out, top_keys_, w2_rows_.unsqueeze(0), d_weights);
    w2_rows_ = Tensor();
    Tensor d_w2;
    {
      const Tensor d_w2_rows = Tensor::zeros({1, keys, width}, x_.dtype(), x_.device());
      backend.sparse_scatter_add(weights, top_keys_, d_out, d_w2_rows);
      d_w2 = d_w2_rows.view({keys, width}).transpose(0, 1).contiguous();
    }
    // a = act(s), s_ij = x_i . w1[idx_ij] + b1[idx_ij]
    Tensor d_scores = Tensor::empty(weights.shape(), weights.dtype(), weights.device());
    backend.unary_backward(activation_, top_scores_, d_weights, d_scores);
    Tensor d_x = Tensor::empty({1, tokens, width}, x_.dtype(), x_.device());
    backend.sparse_gather_sum(d_scores, top_keys_, w1_.unsqueeze(0), d_x);
    Tensor d_w1 = Tensor::zeros({1, keys, width}, x_.dtype(), x_.device());
    backend.sparse_scatter_add(d_scores, top_keys_, x_.unsqueeze(0), d_w1);
    Tensor d_b1 = Tensor::zeros({1, keys, 1}, x_.dtype(), x_.device());
    backend.sparse_scatter_add(d_scores, top_keys_,
                               Tensor::ones({1, tokens, 1}, x_.dtype(), x_.device()), d_b1);
    return {d_x.view({tokens, width}), d_w1.view({keys, width}), d_b1.view({keys}), d_w2};
  }

 private:
  Tensor activated() const {
    Tensor weights = Tensor::empty(top_scores_.shape(), top_scores_.dtype(), top_scores_.device());
    kernels::backend(weights.device()).unary(activation_, top_scores_, weights);
    return weights;
  }

  std::int64_t top_k_, chunk_size_;
  UnaryOp activation_;
  Tensor x_, w1_, w2_rows_;
  Tensor top_scores_;  // [1, N, kept] scores before the activation
  Tensor top_keys_;    // [1, N, kept] i32
};

}  // namespace

Tensor topk_feed_forward(const Tensor& x, const Tensor& w1, const Tensor& b1, const Tensor& w2,
                         std::int64_t top_k, std::int64_t chunk_size, UnaryOp activation) {
  TKF_CHECK(x.dim() == 2 && w1.dim() == 2 && w2.dim() == 2 && w1.size(1) == x.size(1) &&
                w2.size(0) == x.size(1) && w2.size(1) == w1.size(0) &&
                b1.shape() == Shape{w1.size(0)},
            "topk_feed_forward: expected x [N, D], w1 [F, D], b1 [F], w2 [D, F], got ",
            shape_str(x.shape()), ", ", shape_str(w1.shape()), ", ", shape_str(b1.shape()), ", ",
            shape_str(w2.shape()));
  TKF_CHECK(top_k >= 1 && chunk_size >= 1, "topk_feed_forward: k and chunk_size must be >= 1");
  auto function = std::make_shared<TopKFeedForwardFunction>(top_k, chunk_size, activation);
  return autograd::apply(function,
                         {contiguous_input(x), contiguous_input(w1), contiguous_input(b1), w2})[0];
}

}  // namespace topkformer::attention
