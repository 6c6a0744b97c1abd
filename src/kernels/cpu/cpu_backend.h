// The CPU implementation of the kernel interface: OpenBLAS for matrix
// products, OpenMP across rows for the rest. One source file per kernel family.
#pragma once

#include "topkformer/kernels/backend.h"

namespace topkformer::kernels {

class CpuBackend final : public Backend {
 public:
  void copy(const Tensor& src, const Tensor& dst) override;
  void fill(const Tensor& dst, double value) override;
  void arange(const Tensor& dst, double start, double step) override;
  void uniform(const Tensor& dst, PhiloxState state, double low, double high) override;
  void normal(const Tensor& dst, PhiloxState state, double mean, double std) override;

  void gemm(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b, const Tensor& c,
            double alpha, double beta) override;

  void unary(UnaryOp op, const Tensor& x, const Tensor& out) override;
  void unary_backward(UnaryOp op, const Tensor& x, const Tensor& dy, const Tensor& dx) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) override;
  void affine(const Tensor& x, double alpha, double beta, const Tensor& out) override;

  void sum_rows(const Tensor& x, const Tensor& out) override;
  void max_rows(const Tensor& x, const Tensor& values, const Tensor& indices) override;
  void sum_to(const Tensor& x, const Tensor& out) override;

  void softmax(const Tensor& x, const RowMask& mask, bool log, const Tensor& out) override;
  void softmax_backward(const Tensor& y, const Tensor& dy, bool log, const Tensor& dx) override;
  void fill_masked(const Tensor& x, const RowMask& mask, double value) override;

  void layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps,
                  const Tensor& y, const Tensor& mean, const Tensor& rstd) override;
  void layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                           const Tensor& rstd, const Tensor& dy, const Tensor& dx,
                           const Tensor& dgamma, const Tensor& dbeta) override;

  void gather_rows(const Tensor& src, const Tensor& index, const Tensor& rows) override;
  void scatter_add_rows(const Tensor& dst, const Tensor& index, const Tensor& rows) override;

  void cross_entropy(const Tensor& logits, const Tensor& targets, std::int64_t ignore_index,
                     double smoothing, const Tensor& losses, const Tensor& logsumexp) override;
  void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& logsumexp,
                              std::int64_t ignore_index, double smoothing, double scale,
                              const Tensor& dlogits) override;

  void dropout(const Tensor& x, double p, PhiloxState state, const DropoutAddressing& addressing,
               const Tensor& out) override;

  void topk_rows(const Tensor& x, std::int64_t k, const Tensor& values,
                 const Tensor& indices) override;

  void sparse_gather_sum(const Tensor& weights, const Tensor& index, const Tensor& table,
                         const Tensor& rows) override;
  void sparse_gather_dot(const Tensor& rows, const Tensor& index, const Tensor& table,
                         const Tensor& out) override;
  void sparse_scatter_add(const Tensor& weights, const Tensor& index, const Tensor& rows,
                          const Tensor& table) override;

  void adamw_update(const Tensor& parameter, const Tensor& grad, const Tensor& first_moment,
                    const Tensor& second_moment, const AdamWStep& step) override;
  void sgd_update(const Tensor& parameter, const Tensor& grad, const Tensor& momentum,
                  const SgdStep& step) override;

  void causal_linear_attention(const Tensor& phi_q, const Tensor& phi_k, const Tensor& v,
                               const Tensor& out) override;
  void causal_linear_attention_backward(const Tensor& phi_q, const Tensor& phi_k, const Tensor& v,
                                        const Tensor& d_out, const Tensor& d_phi_q,
                                        const Tensor& d_phi_k, const Tensor& d_v) override;
};

CpuBackend& cpu_backend();

}  // namespace topkformer::kernels
