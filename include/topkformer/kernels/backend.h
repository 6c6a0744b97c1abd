// The device-neutral kernel interface.
// See Note [kernel conventions].
#pragma once

#include <cstdint>

#include "topkformer/core/rng.h"
#include "topkformer/core/tensor.h"

// Note [kernel conventions]
// Ops (topkformer/ops) allocate their outputs and call these entry points; each
// device implements all of them (CPU: OpenBLAS + OpenMP; CUDA: cuBLAS + own
// kernels), and every CUDA kernel is tested against its CPU twin. Kernels
// record no autograd history and check only what the op layer cannot know.
// Each `---- family: ... ----` section below is one kernel family, and its
// name is the file stem in every backend: src/kernels/<family>.{h,cpp} (the
// device-neutral part), src/kernels/cpu/<family>.cpp and
// src/kernels/cuda/<family>.cu (.cpp for gemm, which only calls cuBLAS).
//
// Conventions: unless a comment says otherwise, inputs and outputs are
// contiguous, share one device and one floating dtype (f32 or f64), and index
// tensors are i32 or i64.

namespace topkformer::kernels {

enum class UnaryOp { neg, exp, log, tanh, relu, gelu_tanh, gelu_erf, sqrt };
enum class BinaryOp { add, sub, mul, div };

// Masks for rows of attention-shaped scores x[B, ..., Lq, Lk] (row r is query
// r % Lq of batch item r / (rows / B)). Key j of query row i is masked when
// causal and j > i + causal_offset, or when j >= key_lengths[b].
struct RowMask {
  bool causal = false;
  std::int64_t causal_offset = 0;
  Tensor key_lengths;  // [B] i32/i64, or undefined for no padding mask
  bool empty() const { return !causal && !key_lengths.defined(); }
};

// Which Philox word decides dropout element (r, c) of x seen as rows [R, n]:
// word = state.offset + global_row(r) * row_words + column(r, c). By default
// rows and columns are numbered as they are. A query chunk of attention
// probabilities [G, C, Lk] taken from [G, Lq, Lk] sets rows_per_block = C,
// block_stride = Lq, first_row = the chunk's first query and row_words = Lk,
// so it draws exactly the words the whole matrix would; top-k attention also
// passes `columns` (the key index of each kept entry).
struct DropoutAddressing {
  std::int64_t rows_per_block = 0;  // 0: global_row(r) = r
  std::int64_t block_stride = 0;
  std::int64_t first_row = 0;
  std::int64_t row_words = 0;  // 0: n
  Tensor columns;              // [R, n] i32/i64, or undefined: column(r, c) = c
  std::int64_t global_row(std::int64_t r) const {
    if (rows_per_block == 0) return r;
    return (r / rows_per_block) * block_stride + first_row + r % rows_per_block;
  }
};

// One AdamW step (Loshchilov & Hutter) on the gradient g = grad_scale * grad:
// m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
// p -= lr (m / c1 / (sqrt(v / c2) + eps) + wd p), with c1, c2 the bias
// corrections 1 - b^t. grad_scale is the clip factor of gradient clipping,
// applied in the update so that clipping makes no pass of its own.
struct AdamWStep {
  double learning_rate = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  double bias_correction1 = 1.0, bias_correction2 = 1.0;
  double grad_scale = 1.0;
};

// One SGD step with momentum on g = grad_scale * grad: u = momentum u + g + wd p,
// p -= lr u.
struct SgdStep {
  double learning_rate = 0.1, momentum = 0.0, weight_decay = 0.0, grad_scale = 1.0;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // ---- gemm: matrix products ----
  // c[i] = alpha * op(a[i]) * op(b[i]) + beta * c[i] over the leading (batch)
  // dimensions, which must be equal (a stride of 0 broadcasts). Each operand's
  // last two dimensions must have unit stride in one of them: that makes row-
  // and column-major views with any leading dimension valid without copies.
  // c's last dimension must have unit stride.
  virtual void gemm(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b,
                    const Tensor& c, double alpha, double beta) = 0;

  // ---- elementwise: copies, fills and maps ----
  // dst = src converted to dst's dtype; both may be any strided views of one shape.
  virtual void copy(const Tensor& src, const Tensor& dst) = 0;
  virtual void fill(const Tensor& dst, double value) = 0;                 // dst: any strides
  virtual void arange(const Tensor& dst, double start, double step) = 0;  // dst contiguous
  // The maps: inputs any strides and of out's shape, out contiguous.
  virtual void unary(UnaryOp op, const Tensor& x, const Tensor& out) = 0;
  // dx = dy * f'(x) for the activations relu, gelu_tanh, gelu_erf, tanh (where
  // tanh takes its output y instead of x).
  virtual void unary_backward(UnaryOp op, const Tensor& x, const Tensor& dy, const Tensor& dx) = 0;
  virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) = 0;
  // out = alpha * x + beta
  virtual void affine(const Tensor& x, double alpha, double beta, const Tensor& out) = 0;

  // ---- reduce: reductions ----
  // x[R, n] -> out[R]
  virtual void sum_rows(const Tensor& x, const Tensor& out) = 0;
  // x[R, n] -> values[R], indices[R] (i64; the first maximum)
  virtual void max_rows(const Tensor& x, const Tensor& values, const Tensor& indices) = 0;
  // Sums x into out, whose shape broadcasts to x's (same rank): the gradient of
  // a broadcast. out may be a view; it is overwritten.
  virtual void sum_to(const Tensor& x, const Tensor& out) = 0;
  // out (one f64 element, whatever x's dtype) = the sum of x's squared
  // elements, accumulated in f64 in an order fixed by x's size (the same bits
  // on every run; the devices' orders differ, so they agree to rounding). The
  // squared L2 norm of a gradient, which stays on the device.
  virtual void sum_squares(const Tensor& x, const Tensor& out) = 0;

  // ---- softmax: the softmax family, rows of the last dimension ----
  // Masked entries get probability 0 (log-probability -inf); a fully masked
  // row is all zeros (all -inf for log).
  virtual void softmax(const Tensor& x, const RowMask& mask, bool log, const Tensor& out) = 0;
  // From the forward output y: dx = y * (dy - sum(dy * y)) for softmax,
  // dx = dy - exp(y) * sum(dy) for log-softmax; masked entries get 0.
  virtual void softmax_backward(const Tensor& y, const Tensor& dy, bool log, const Tensor& dx) = 0;
  // Sets the masked entries of x (in place) to `value`.
  virtual void fill_masked(const Tensor& x, const RowMask& mask, double value) = 0;

  // ---- layer_norm: over the last dimension, x[R, D], gamma[D], beta[D] ----
  virtual void layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps,
                          const Tensor& y, const Tensor& mean, const Tensor& rstd) = 0;
  virtual void layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                                   const Tensor& rstd, const Tensor& dy, const Tensor& dx,
                                   const Tensor& dgamma, const Tensor& dbeta) = 0;

  // ---- rows: rows by index, src[G, M, D], index[G, N], rows[G, N, D] ----
  // rows[g, n] = src[g, index[g, n]]; an index outside [0, M) throws.
  virtual void gather_rows(const Tensor& src, const Tensor& index, const Tensor& rows) = 0;
  // dst[g, index[g, n]] += rows[g, n] (deterministic order).
  virtual void scatter_add_rows(const Tensor& dst, const Tensor& index, const Tensor& rows) = 0;

  // ---- cross_entropy: fused, logits[N, C], targets[N] ----
  // losses[N] = -sum_c q_c log p_c with q = (1 - smoothing) onehot + smoothing / C;
  // logsumexp[N] kept for the backward. Rows whose target is ignore_index get 0;
  // any other target outside [0, C) throws.
  virtual void cross_entropy(const Tensor& logits, const Tensor& targets, std::int64_t ignore_index,
                             double smoothing, const Tensor& losses, const Tensor& logsumexp) = 0;
  // dlogits = scale * (softmax(logits) - q), 0 on ignored rows.
  virtual void cross_entropy_backward(const Tensor& logits, const Tensor& targets,
                                      const Tensor& logsumexp, std::int64_t ignore_index,
                                      double smoothing, double scale, const Tensor& dlogits) = 0;

  // ---- random: Philox random numbers and dropout ----
  // Each element reads fixed words of the stream (state.seed, state.offset),
  // so every device draws the same numbers.
  virtual void uniform(const Tensor& dst, PhiloxState state, double low, double high) = 0;
  virtual void normal(const Tensor& dst, PhiloxState state, double mean, double std) = 0;
  // out = x * keep / (1 - p), keep = (uniform_f32(word) >= p) with the word
  // chosen by `addressing`. The backward pass is the same call on the
  // gradient with the same state and addressing.
  virtual void dropout(const Tensor& x, double p, PhiloxState state,
                       const DropoutAddressing& addressing, const Tensor& out) = 0;

  // ---- topk_rows: x[R, n] -> values[R, k], indices[R, k] (i32 or i64) ----
  // The k largest of each row in descending order, ties to the lower index;
  // O(n) selection per row, then a sort of the k winners.
  virtual void topk_rows(const Tensor& x, std::int64_t k, const Tensor& values,
                         const Tensor& indices) = 0;

  // ---- topk_scores: top-k attention scores without the dense score matrix ----
  // For each query row i of q[G, Lq, d]: the k largest masked scores
  // s_ij = scale * q_i . keys_j over keys[G, Lk, d] (k <= Lk), in descending
  // order with ties to the lower key, into values[G, Lq, k] and indices
  // [G, Lq, k] (i32). The mask is that of scores [G, Lq, Lk] (its
  // key_lengths are per batch item, group g belonging to item g / (G / B)).
  // A row that sees fewer than k keys fills its remaining slots with value
  // -inf and an unspecified index in [0, Lk). `chunk_rows` bounds the rows of
  // the dense [rows, Lk] block a backend may materialise per step (the CPU's
  // does; the CUDA kernel keeps a running top-k and writes no scores).
  virtual void topk_scores(const Tensor& q, const Tensor& keys, double scale, const RowMask& mask,
                           std::int64_t k, std::int64_t chunk_rows, const Tensor& values,
                           const Tensor& indices) = 0;

  // ---- sparse: products with a row-sparse matrix of k entries per row ----
  // The sparse matrix has rows [G, R] with entries weights[g, r, j] in columns
  // index[g, r, j] (i32/i64, in [0, M)); table is dense [G, M, D], rows [G, R, D].
  // These are the products of top-k attention and the top-k feed-forward layer.
  // Entries with weight exactly 0 are skipped (masked keys, dropped entries),
  // so they contribute nothing even where the table holds inf or NaN.
  // rows[g, r] = sum_j weights[g, r, j] * table[g, index[g, r, j]]
  virtual void sparse_gather_sum(const Tensor& weights, const Tensor& index, const Tensor& table,
                                 const Tensor& rows) = 0;
  // out[g, r, j] = rows[g, r] . table[g, index[g, r, j]]
  virtual void sparse_gather_dot(const Tensor& rows, const Tensor& index, const Tensor& table,
                                 const Tensor& out) = 0;
  // table[g, index[g, r, j]] += weights[g, r, j] * rows[g, r], in a fixed order.
  virtual void sparse_scatter_add(const Tensor& weights, const Tensor& index, const Tensor& rows,
                                  const Tensor& table) = 0;

  // ---- optimizer: fused updates (all operands contiguous, same shape, in place) ----
  virtual void adamw_update(const Tensor& parameter, const Tensor& grad, const Tensor& first_moment,
                            const Tensor& second_moment, const AdamWStep& step) = 0;
  virtual void sgd_update(const Tensor& parameter, const Tensor& grad, const Tensor& momentum,
                          const SgdStep& step) = 0;

  // ---- linear_attention: causal linear attention by prefix sums (Performer) ----
  // phi_q, phi_k [G, L, m], v [G, L, dv] -> out [G, L, dv]:
  // out_i = phi_q_i^T S_i / (phi_q_i . z_i), S_i = sum_{j<=i} phi_k_j v_j^T,
  // z_i = sum_{j<=i} phi_k_j; 0 where the denominator is 0. Memory O(m dv)
  // per group: no [L, m, dv] tensor.
  virtual void causal_linear_attention(const Tensor& phi_q, const Tensor& phi_k, const Tensor& v,
                                       const Tensor& out) = 0;
  // The gradients of the above, by a forward and a reverse scan.
  virtual void causal_linear_attention_backward(const Tensor& phi_q, const Tensor& phi_k,
                                                const Tensor& v, const Tensor& d_out,
                                                const Tensor& d_phi_q, const Tensor& d_phi_k,
                                                const Tensor& d_v) = 0;
};

// The backend that runs kernels for a device (throws if none is built in).
Backend& backend(Device device);

}  // namespace topkformer::kernels
