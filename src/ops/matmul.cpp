#include "topkformer/ops.h"

#include "op_support.h"

namespace topkformer::ops {

using autograd::record;

namespace {

// BLAS takes a matrix with unit stride in either of its two last dimensions;
// anything else (a strided slice of columns) is copied once.
Tensor blas_ready(const Tensor& x) {
  const std::int64_t rows = x.size(-2), cols = x.size(-1);
  const bool ok = (cols == 1 || x.stride(-1) == 1 || rows == 1 || x.stride(-2) == 1);
  return ok ? x : x.contiguous();
}

// The forward product, without autograd.
Tensor product(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
  check_floating(a, "matmul");
  check_compatible(a, b, "matmul");
  TKF_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul: operands need rank >= 2, got ",
            shape_str(a.shape()), " and ", shape_str(b.shape()));
  const std::int64_t m = transpose_a ? a.size(-1) : a.size(-2);
  const std::int64_t k = transpose_a ? a.size(-2) : a.size(-1);
  const std::int64_t k_b = transpose_b ? b.size(-1) : b.size(-2);
  const std::int64_t n = transpose_b ? b.size(-2) : b.size(-1);
  TKF_CHECK(k == k_b, "matmul: inner dimensions differ, ", shape_str(a.shape()),
            (transpose_a ? "^T" : ""), " x ", shape_str(b.shape()), (transpose_b ? "^T" : ""));

  // A 2-D right operand: fold a's batch into the rows of one large product.
  if (b.dim() == 2 && a.dim() > 2 && !transpose_a) {
    const Tensor rows = a.reshape({-1, k});
    Tensor out = empty_like(a, {rows.size(0), n});
    backend_of(a).gemm(blas_ready(rows), false, blas_ready(b), transpose_b, out, 1.0, 0.0);
    Shape shape(a.shape().begin(), a.shape().end() - 1);
    shape.push_back(n);
    return out.view(shape);
  }
  const Shape batch = broadcast_shapes(Shape(a.shape().begin(), a.shape().end() - 2),
                                       Shape(b.shape().begin(), b.shape().end() - 2), "matmul");
  Shape a_shape = batch, b_shape = batch, out_shape = batch;
  a_shape.insert(a_shape.end(), a.shape().end() - 2, a.shape().end());
  b_shape.insert(b_shape.end(), b.shape().end() - 2, b.shape().end());
  out_shape.insert(out_shape.end(), {m, n});
  Tensor out = empty_like(a, out_shape);
  backend_of(a).gemm(blas_ready(a.expand(a_shape)), transpose_a, blas_ready(b.expand(b_shape)),
                     transpose_b, out, 1.0, 0.0);
  return out;
}

// Gradient of a 2-D operand shared by a batch: fold the batch into the
// contraction instead of materialising one gradient per batch item.
Tensor fold_rows(const Tensor& x) {
  return x.reshape({-1, x.size(-1)});
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
  Tensor out = product(a, b, transpose_a, transpose_b);
  return record("matmul", {a, b}, out, [a, b, transpose_a, transpose_b](const auto& g) {
    const Tensor& dc = g[0];
    Tensor da, db;
    if (a.requires_grad()) {
      // d op(a) = dc op(b)^T; da is its transpose when a was transposed.
      da = transpose_a ? product(b, dc, transpose_b, true) : product(dc, b, false, !transpose_b);
      da = sum_to_shape(da, a.shape());
    }
    if (b.requires_grad()) {
      if (b.dim() == 2 && a.dim() > 2 && !transpose_a) {
        const Tensor a_rows = fold_rows(a), dc_rows = fold_rows(dc);
        db = transpose_b ? product(dc_rows, a_rows, true, false)
                         : product(a_rows, dc_rows, true, false);
      } else {
        // d op(b) = op(a)^T dc; db is its transpose when b was transposed.
        db = transpose_b ? product(dc, a, true, transpose_a) : product(a, dc, !transpose_a, false);
        db = sum_to_shape(db, b.shape());
      }
    }
    return std::vector<Tensor>{da, db};
  });
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  TKF_CHECK(weight.dim() == 2 && x.dim() >= 2 && x.size(-1) == weight.size(1), "linear: input ",
            shape_str(x.shape()), " does not match weight [out, in] ", shape_str(weight.shape()));
  Tensor out = matmul(x, weight, false, true);
  return bias.defined() ? add(out, bias) : out;
}

}  // namespace topkformer::ops
