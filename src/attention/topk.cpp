#include "topkformer/autograd/function.h"
#include "topkformer/ops.h"
#include "variant_support.h"

namespace topkformer::attention {

namespace {

using kernels::Backend;

class TopKAttentionFunction final : public autograd::Function {
 public:
  TopKAttentionFunction(AttentionContext context, std::int64_t top_k, std::int64_t chunk_size)
      : context_(std::move(context)), top_k_(top_k), chunk_size_(chunk_size) {}

  std::string name() const override { return "topk_attention"; }

  std::vector<Tensor> forward(const std::vector<Tensor>& inputs) override {
    q_ = inputs[0];
    k_ = inputs[1];
    v_ = inputs[2];
    shape_ = check_attention_inputs(q_, k_, v_, context_, "topk_attention");
    const std::int64_t groups = shape_.batch * shape_.heads;
    const std::int64_t kept = std::min(top_k_, shape_.keys);
    Backend& backend = kernels::backend(q_.device());
    top_scores_ = Tensor::empty({groups, shape_.queries, kept}, q_.dtype(), q_.device());
    top_keys_ = Tensor::empty({groups, shape_.queries, kept}, DType::i32, q_.device());
    // Slots left over where a query sees fewer than `kept` keys hold score
    // -inf (weight 0), so they add nothing anywhere.
    kernels::RowMask mask = chunk_mask(shape_, context_, 0);
    backend.topk_scores(q_.view({groups, shape_.queries, shape_.head_dim}),
                        k_.view({groups, shape_.keys, shape_.head_dim}), context_.scale, mask, kept,
                        chunk_size_, top_scores_, top_keys_);
    const Tensor weights = dropped(softmax_of_scores());
    Tensor out = Tensor::empty({groups, shape_.queries, shape_.value_dim}, q_.dtype(), q_.device());
    backend.sparse_gather_sum(weights, top_keys_, v_.view({groups, shape_.keys, shape_.value_dim}),
                              out);
    return {out.view({shape_.batch, shape_.heads, shape_.queries, shape_.value_dim})};
  }

  std::vector<Tensor> backward(const std::vector<Tensor>& grad_outputs) override {
    const std::int64_t groups = shape_.batch * shape_.heads;
    Backend& backend = kernels::backend(q_.device());
    const Tensor d_out =
        grad_outputs[0].contiguous().view({groups, shape_.queries, shape_.value_dim});
    const Tensor q = q_.view({groups, shape_.queries, shape_.head_dim});
    const Tensor k = k_.view({groups, shape_.keys, shape_.head_dim});
    const Tensor v = v_.view({groups, shape_.keys, shape_.value_dim});
    const Tensor weights = softmax_of_scores();
    const Tensor used_weights = dropped(weights);

    // out_i = sum_j w_ij V[idx_ij]  =>  dV[idx_ij] += w_ij dout_i, dw_ij = dout_i . V[idx_ij]
    Tensor d_v = Tensor::zeros(v.shape(), v.dtype(), v.device());
    backend.sparse_scatter_add(used_weights, top_keys_, d_out, d_v);
    Tensor d_weights = Tensor::empty(weights.shape(), weights.dtype(), weights.device());
    backend.sparse_gather_dot(d_out, top_keys_, v, d_weights);
    d_weights = dropped(d_weights);
    // Softmax over the kept scores, then s_ij = scale q_i . k_idx.
    Tensor d_scores = Tensor::empty(weights.shape(), weights.dtype(), weights.device());
    backend.softmax_backward(weights, d_weights, false, d_scores);
    backend.affine(d_scores, context_.scale, 0.0, d_scores);
    Tensor d_q = Tensor::empty(q.shape(), q.dtype(), q.device());
    backend.sparse_gather_sum(d_scores, top_keys_, k, d_q);
    Tensor d_k = Tensor::zeros(k.shape(), k.dtype(), k.device());
    backend.sparse_scatter_add(d_scores, top_keys_, q, d_k);
    return {d_q.view(q_.shape()), d_k.view(k_.shape()), d_v.view(v_.shape())};
  }

 private:
  Tensor softmax_of_scores() const {
    Tensor weights = Tensor::empty(top_scores_.shape(), top_scores_.dtype(), top_scores_.device());
    kernels::backend(weights.device()).softmax(top_scores_, {}, false, weights);
    return weights;
  }

  // Applies the dropout mask (if any) to [G, Lq, kept] weights or their
  // gradients: entry (g, i, j) uses the word of key top_keys_[g, i, j].
  Tensor dropped(const Tensor& x) const {
    if (context_.dropout <= 0.0) return x;
    kernels::DropoutAddressing addressing;
    addressing.row_words = shape_.keys;
    addressing.columns = top_keys_;
    Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
    kernels::backend(x.device())
        .dropout(x, context_.dropout, context_.dropout_state, addressing, out);
    return out;
  }

  AttentionContext context_;
  std::int64_t top_k_, chunk_size_;
  AttentionShape shape_{};
  Tensor q_, k_, v_;
  Tensor top_scores_;  // [B * H, Lq, kept]
  Tensor top_keys_;    // [B * H, Lq, kept] i32
};

}  // namespace

Tensor topk_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                      const AttentionContext& context, std::int64_t top_k,
                      std::int64_t chunk_size) {
  TKF_CHECK(top_k >= 1, "topk_attention: k must be >= 1, got ", top_k);
  TKF_CHECK(chunk_size >= 1, "topk_attention: chunk_size must be >= 1, got ", chunk_size);
  auto function = std::make_shared<TopKAttentionFunction>(context, top_k, chunk_size);
  return autograd::apply(function,
                         {contiguous_input(q), contiguous_input(k), contiguous_input(v)})[0];
}

}  // namespace topkformer::attention
