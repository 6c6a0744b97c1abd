// The attention variants as differentiable functions of q [B, H, Lq, d],
// k [B, H, Lk, d] and v [B, H, Lk, d], returning [B, H, Lq, d].
// See Note [attention visibility].
#pragma once

#include <string>

#include "topkformer/attention/config.h"
#include "topkformer/core/rng.h"
#include "topkformer/core/tensor.h"

// Note [attention visibility]
// Key j is visible to query i when j < key_lengths[b] and, if causal,
// j <= i + (Lk - Lq) (the last query sees every key). A query that sees no
// key gets a zero output.

namespace topkformer::kernels {
enum class UnaryOp;  // kernels/backend.h
}  // namespace topkformer::kernels

namespace topkformer::attention {

struct AttentionContext {
  bool causal = false;
  Tensor key_lengths;    // [B] i32/i64 on the CPU, or undefined: all keys valid
  double scale = 1.0;    // multiplies q . k (1/sqrt(d) in MultiHeadAttention)
  double dropout = 0.0;  // probability on the attention weights (0 when not training)
  // Element (b, h, i, j) of the full [B, H, Lq, Lk] weight matrix is dropped by
  // word ((b * H + h) * Lq + i) * Lk + j of this stream, whatever the variant,
  // so chunked and top-k (for the keys it keeps) drop what vanilla drops.
  PhiloxState dropout_state;
};

// softmax(scale q k^T + mask) v through ordinary ops: keeps [B, H, Lq, Lk].
Tensor vanilla_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                         const AttentionContext& context);

// Vanilla, one chunk of queries at a time, with input recomputation: the
// forward pass keeps only q, k and v; the backward pass recomputes one chunk
// at a time. Under a causal mask a chunk only touches the keys it can see.
Tensor chunked_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                         const AttentionContext& context, std::int64_t chunk_size);

// Top-k attention (paper Eq. 4): each query keeps its top_k largest scores
// (top_k is clamped to Lk) and a softmax over those only. Scores are computed
// one chunk of one head at a time; what is saved is the [B, H, Lq, top_k]
// scores and key indices. Products with the sparse weights are gathers and
// scatter-adds over the indices, so the backward pass never recomputes q k^T.
Tensor topk_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                      const AttentionContext& context, std::int64_t top_k, std::int64_t chunk_size);

// Performer (FAVOR+) with positive random features `projection` [m, d]:
// bidirectional by two matrix products, causal by prefix sums with a backward
// pass whose memory is linear in L. Dropout does not apply (there are no
// attention weights to drop).
Tensor performer_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                           const AttentionContext& context, const Tensor& projection);

// The feed-forward layer cast as attention (paper Eq. 3): queries are the
// rows of x [N, D], keys the rows of w1 [F, D] (plus the per-key bias b1 [F]),
// values the columns of w2 [D, F]. Each token keeps its top_k largest scores
// (clamped to F), computed chunk_size tokens at a time; the activation (an
// op with a derivative kernel: relu, gelu_erf, ...) is applied to those only,
// and out = sum_j act(s_j) w2[:, idx_j] by gathers. The backward pass uses the saved [N, top_k]
// scores and indices and produces the weight gradients by scatter-adds.
Tensor topk_feed_forward(const Tensor& x, const Tensor& w1, const Tensor& b1, const Tensor& w2,
                         std::int64_t top_k, std::int64_t chunk_size, kernels::UnaryOp activation);

// The variant config.kind with its knobs: where a kind becomes a call.
// `projection` is Performer's features [m, d]; the other variants ignore it.
Tensor attend(const AttentionConfig& config, const Tensor& q, const Tensor& k, const Tensor& v,
              const AttentionContext& context, const Tensor& projection = {});

// Draws [num_features, head_dim] orthogonal random features: blocks of
// head_dim orthogonal rows, each row scaled to the norm of a Gaussian vector.
Tensor draw_performer_projection(std::int64_t num_features, std::int64_t head_dim,
                                 Generator& generator, DType dtype = DType::f32);

}  // namespace topkformer::attention
