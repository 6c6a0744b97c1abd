#include <cmath>

#include "topkformer/autograd/function.h"
#include "topkformer/kernels/backend.h"
#include "topkformer/ops.h"
#include "variant_support.h"

namespace topkformer::attention {

namespace {

// Positive random features of the softmax kernel (FAVOR+):
// phi(x) = m^-1/2 exp(w . x' - |x'|^2 / 2 - stabiliser), x' = x d^-1/4, so that
// E[phi(q) . phi(k)] = exp(q . k / sqrt(d)). The stabiliser keeps exp() in
// range: the maximum of w . x' - |x'|^2 / 2 over the row for queries, over the
// valid keys of a head for keys. Each is one constant factor per query row or
// per head, which cancels exactly between numerator and denominator. It is
// taken after subtracting |x'|^2 / 2: a maximum of w . x' alone leaves a
// query's largest feature at exp(-|x'|^2 / 2), and in f32 every feature of a
// row with |x'|^2 / 2 beyond 87 underflowed (NaN outputs, 0 / 0). (The
// reference implementation adds 1e-6 after exp(); that breaks the
// cancellation, and the keys' maximum then leaks padded and future keys into
// every output.) Padded keys get logit -inf, hence phi = 0, and take no part
// in the maximum.
Tensor positive_features(const Tensor& x, const Tensor& projection, bool is_query,
                         const Tensor& key_padding) {
  const auto d = static_cast<double>(x.size(-1));
  const auto m = static_cast<double>(projection.size(0));
  const Tensor scaled = ops::scale(x, std::pow(d, -0.25));
  const Tensor half_norm = ops::scale(ops::sum_last(ops::mul(scaled, scaled), true), 0.5);
  // [B, H, L, m]: w . x' - |x'|^2 / 2
  Tensor logits = ops::sub(ops::matmul(scaled, projection, false, true), half_norm);
  if (key_padding.defined()) logits = ops::add(logits, key_padding);
  Tensor stabiliser;
  if (is_query) {
    stabiliser = ops::max_last(logits, true);
  } else {
    const Shape& s = logits.shape();
    stabiliser = ops::reshape(ops::max_last(ops::reshape(logits, {s[0], s[1], s[2] * s[3]}), true),
                              {s[0], s[1], 1, 1});
  }
  return ops::scale(ops::exp(ops::sub(logits, stabiliser)), 1.0 / std::sqrt(m));
}

// [B, 1, Lk, 1] with 1 for the valid keys of each item and 0 for padding,
// built on the device from the key lengths (no host round trip per layer).
Tensor key_validity(const Tensor& key_lengths, std::int64_t keys, const Tensor& like) {
  const std::int64_t batch = key_lengths.size(0);
  const Tensor valid = Tensor::ones({batch, keys}, like.dtype(), like.device());
  kernels::backend(like.device()).fill_masked(valid, kernels::RowMask{false, 0, key_lengths}, 0.0);
  return valid.view({batch, 1, keys, 1});
}

// From key_validity: 0 for valid keys and -inf for padding, as log(valid).
// An item with no valid key keeps 0 everywhere (1 - its maximum is added
// first): its features are zeroed after instead.
Tensor key_padding_logits(const Tensor& validity) {
  const Shape& s = validity.shape();
  const Tensor rows = ops::reshape(validity, {s[0], s[2]});
  const Tensor none_valid = ops::add_scalar(ops::neg(ops::max_last(rows, true)), 1.0);
  return ops::reshape(ops::log(ops::add(rows, none_valid)), s);
}

class CausalLinearAttentionFunction final : public autograd::Function {
 public:
  std::string name() const override { return "causal_linear_attention"; }

  std::vector<Tensor> forward(const std::vector<Tensor>& inputs) override {
    phi_q_ = inputs[0];
    phi_k_ = inputs[1];
    v_ = inputs[2];
    const Shape& s = phi_q_.shape();
    const std::int64_t groups = s[0] * s[1];
    Tensor out = Tensor::empty({s[0], s[1], s[2], v_.size(3)}, v_.dtype(), v_.device());
    kernels::backend(v_.device())
        .causal_linear_attention(grouped(phi_q_), grouped(phi_k_), grouped(v_),
                                 out.view({groups, s[2], v_.size(3)}));
    return {out};
  }

  std::vector<Tensor> backward(const std::vector<Tensor>& grad_outputs) override {
    Tensor d_phi_q = Tensor::empty(phi_q_.shape(), phi_q_.dtype(), phi_q_.device());
    Tensor d_phi_k = Tensor::empty(phi_k_.shape(), phi_k_.dtype(), phi_k_.device());
    Tensor d_v = Tensor::empty(v_.shape(), v_.dtype(), v_.device());
    kernels::backend(v_.device())
        .causal_linear_attention_backward(grouped(phi_q_), grouped(phi_k_), grouped(v_),
                                          grouped(grad_outputs[0].contiguous()), grouped(d_phi_q),
                                          grouped(d_phi_k), grouped(d_v));
    return {d_phi_q, d_phi_k, d_v};
  }

 private:
  static Tensor grouped(const Tensor& x) {
    return x.view({x.size(0) * x.size(1), x.size(2), x.size(3)});
  }
  Tensor phi_q_, phi_k_, v_;
};

}  // namespace

Tensor performer_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                           const AttentionContext& context, const Tensor& projection) {
  const AttentionShape shape = check_attention_inputs(q, k, v, context, "performer_attention");
  TKF_CHECK(projection.dim() == 2 && projection.size(1) == shape.head_dim,
            "performer_attention: projection ", shape_str(projection.shape()),
            " must be [num_features, ", shape.head_dim, "]");
  TKF_CHECK(!context.causal || shape.queries == shape.keys,
            "performer_attention: causal attention needs as many queries as keys, got ",
            shape.queries, " and ", shape.keys);
  const Tensor features = projection.to(q.dtype());
  const Tensor phi_q = positive_features(q, features, true, {});
  Tensor phi_k;
  if (context.key_lengths.defined()) {
    const Tensor validity = key_validity(context.key_lengths, shape.keys, q);
    phi_k = ops::mul(positive_features(k, features, false, key_padding_logits(validity)), validity);
  } else {
    phi_k = positive_features(k, features, false, {});
  }
  if (context.causal) {
    return autograd::apply(
        std::make_shared<CausalLinearAttentionFunction>(),
        {contiguous_input(phi_q), contiguous_input(phi_k), contiguous_input(v)})[0];
  }
  // out = phi_q (phi_k^T v) / (phi_q sum_j phi_k_j): linear in L.
  const Tensor key_values = ops::matmul(phi_k, v, true, false);             // [B, H, m, dv]
  const Tensor key_sum = ops::sum_last(ops::transpose(phi_k, 2, 3), true);  // [B, H, m, 1]
  return ops::div(ops::matmul(phi_q, key_values), ops::matmul(phi_q, key_sum));
}

Tensor draw_performer_projection(std::int64_t num_features, std::int64_t head_dim,
                                 Generator& generator, DType dtype) {
  TKF_CHECK(num_features >= 1 && head_dim >= 1,
            "draw_performer_projection: need positive sizes, got ", num_features,
            " features of dimension ", head_dim);
  std::vector<double> rows;
  rows.reserve(num_features * head_dim);
  while (static_cast<std::int64_t>(rows.size()) < num_features * head_dim) {
    // A block of head_dim orthonormal rows: modified Gram-Schmidt of a Gaussian matrix.
    std::vector<double> block =
        Tensor::randn({head_dim, head_dim}, generator, DType::f64).to_vector<double>();
    for (std::int64_t i = 0; i < head_dim; ++i) {
      double* row = &block[i * head_dim];
      for (std::int64_t j = 0; j < i; ++j) {
        const double* previous = &block[j * head_dim];
        double dot = 0.0;
        for (std::int64_t c = 0; c < head_dim; ++c) dot += row[c] * previous[c];
        for (std::int64_t c = 0; c < head_dim; ++c) row[c] -= dot * previous[c];
      }
      double norm = 0.0;
      for (std::int64_t c = 0; c < head_dim; ++c) norm += row[c] * row[c];
      norm = std::sqrt(norm);
      for (std::int64_t c = 0; c < head_dim; ++c) row[c] /= norm;
    }
    const std::int64_t take =
        std::min<std::int64_t>(head_dim, num_features - rows.size() / head_dim);
    rows.insert(rows.end(), block.begin(), block.begin() + take * head_dim);
  }
  // Each row gets the length of an independent Gaussian vector, so rows are
  // marginally Gaussian while staying orthogonal within a block.
  const std::vector<double> lengths =
      Tensor::randn({num_features, head_dim}, generator, DType::f64).to_vector<double>();
  for (std::int64_t i = 0; i < num_features; ++i) {
    double norm = 0.0;
    for (std::int64_t c = 0; c < head_dim; ++c)
      norm += lengths[i * head_dim + c] * lengths[i * head_dim + c];
    norm = std::sqrt(norm);
    for (std::int64_t c = 0; c < head_dim; ++c) rows[i * head_dim + c] *= norm;
  }
  return Tensor::from_vector<double>({num_features, head_dim}, rows).to(dtype);
}

}  // namespace topkformer::attention
