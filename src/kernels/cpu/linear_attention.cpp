// Causal linear attention (Performer) by prefix sums, with running state of
// m x dv per group instead of an [L, m, dv] tensor.
#include "kernels/linear_attention.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/parallel.h"

namespace topkformer::kernels::cpu {

namespace {
// Running prefix state S (m x dv) and z (m), in double: long prefix sums in
// f32 would drift.
struct PrefixState {
  std::vector<double> s, z;
  PrefixState(std::int64_t m, std::int64_t dv) : s(m * dv, 0.0), z(m, 0.0) {}
  template <typename T>
  void add(const T* phi_k, const T* v, std::int64_t m, std::int64_t dv) {
    for (std::int64_t f = 0; f < m; ++f) {
      z[f] += phi_k[f];
      for (std::int64_t c = 0; c < dv; ++c) s[f * dv + c] += double(phi_k[f]) * v[c];
    }
  }
  // num = phi_q^T S (into num[dv]); returns den = phi_q . z
  template <typename T>
  double read(const T* phi_q, std::int64_t m, std::int64_t dv, double* num) const {
    std::fill(num, num + dv, 0.0);
    double den = 0.0;
    for (std::int64_t f = 0; f < m; ++f) {
      den += phi_q[f] * z[f];
      for (std::int64_t c = 0; c < dv; ++c) num[c] += double(phi_q[f]) * s[f * dv + c];
    }
    return den;
  }
};
}  // namespace

void CpuBackend::causal_linear_attention(const Tensor& phi_q, const Tensor& phi_k, const Tensor& v,
                                         const Tensor& out) {
  const auto p = check_linear_attention(phi_q, phi_k, v, "causal_linear_attention");
  dispatch_floating(v.dtype(), "causal_linear_attention", [&](auto zero) {
    using T = decltype(zero);
    const T *q = typed<T>(phi_q), *k = typed<T>(phi_k), *values = typed<T>(v);
    T* result = typed_mut<T>(out);
    parallel_for(
        p.groups, p.length * p.features * p.width * 4, [&](std::int64_t begin, std::int64_t end) {
          std::vector<double> num(p.width);
          for (std::int64_t g = begin; g < end; ++g) {
            PrefixState state(p.features, p.width);
            for (std::int64_t i = 0; i < p.length; ++i) {
              const std::int64_t row = g * p.length + i;
              state.add(k + row * p.features, values + row * p.width, p.features, p.width);
              const double den = state.read(q + row * p.features, p.features, p.width, num.data());
              for (std::int64_t c = 0; c < p.width; ++c) {
                result[row * p.width + c] = den != 0.0 ? static_cast<T>(num[c] / den) : T(0);
              }
            }
          }
        });
  });
}

void CpuBackend::causal_linear_attention_backward(const Tensor& phi_q, const Tensor& phi_k,
                                                  const Tensor& v, const Tensor& d_out,
                                                  const Tensor& d_phi_q, const Tensor& d_phi_k,
                                                  const Tensor& d_v) {
  const auto p = check_linear_attention_backward(phi_q, phi_k, v, d_out);
  dispatch_floating(v.dtype(), "causal_linear_attention_backward", [&](auto zero) {
    using T = decltype(zero);
    const T *q = typed<T>(phi_q), *k = typed<T>(phi_k), *values = typed<T>(v);
    const T* grad = typed<T>(d_out);
    T *dq = typed_mut<T>(d_phi_q), *dk = typed_mut<T>(d_phi_k), *dvalues = typed_mut<T>(d_v);
    const std::int64_t m = p.features, dv = p.width;
    parallel_for(p.groups, p.length * m * dv * 8, [&](std::int64_t begin, std::int64_t end) {
      std::vector<double> num(dv);
      // Per position: d num_i = d out_i / den_i (dv values) and d den_i.
      std::vector<double> d_num(p.length * dv), d_den(p.length);
      for (std::int64_t g = begin; g < end; ++g) {
        // Forward scan: d phi_q_i = S_i d num_i + d den_i z_i.
        PrefixState state(m, dv);
        for (std::int64_t i = 0; i < p.length; ++i) {
          const std::int64_t row = g * p.length + i;
          state.add(k + row * m, values + row * dv, m, dv);
          const double den = state.read(q + row * m, m, dv, num.data());
          double out_dot_grad = 0.0;
          for (std::int64_t c = 0; c < dv; ++c) {
            const double out = den != 0.0 ? num[c] / den : 0.0;
            out_dot_grad += out * grad[row * dv + c];
            d_num[i * dv + c] = den != 0.0 ? grad[row * dv + c] / den : 0.0;
          }
          d_den[i] = den != 0.0 ? -out_dot_grad / den : 0.0;
          for (std::int64_t f = 0; f < m; ++f) {
            double total = d_den[i] * state.z[f];
            for (std::int64_t c = 0; c < dv; ++c) total += state.s[f * dv + c] * d_num[i * dv + c];
            dq[row * m + f] = static_cast<T>(total);
          }
        }
        // Reverse scan: R_j = sum_{i>=j} phi_q_i d num_i^T, r_j = sum_{i>=j} d den_i phi_q_i;
        // d phi_k_j = R_j v_j + r_j, d v_j = R_j^T phi_k_j.
        PrefixState reverse(m, dv);
        for (std::int64_t i = p.length - 1; i >= 0; --i) {
          const std::int64_t row = g * p.length + i;
          const T* query = q + row * m;
          for (std::int64_t f = 0; f < m; ++f) {
            reverse.z[f] += d_den[i] * query[f];
            for (std::int64_t c = 0; c < dv; ++c) {
              reverse.s[f * dv + c] += double(query[f]) * d_num[i * dv + c];
            }
          }
          const T* key = k + row * m;
          const T* value = values + row * dv;
          for (std::int64_t f = 0; f < m; ++f) {
            double total = reverse.z[f];
            for (std::int64_t c = 0; c < dv; ++c) total += reverse.s[f * dv + c] * value[c];
            dk[row * m + f] = static_cast<T>(total);
          }
          for (std::int64_t c = 0; c < dv; ++c) {
            double total = 0.0;
            for (std::int64_t f = 0; f < m; ++f) total += reverse.s[f * dv + c] * key[f];
            dvalues[row * dv + c] = static_cast<T>(total);
          }
        }
      }
    });
  });
}

}  // namespace topkformer::kernels::cpu
