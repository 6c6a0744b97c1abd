#include "topkformer/ops.h"

#include "op_support.h"

namespace topkformer::ops {

using autograd::record;

namespace {
void check_row_index(const Tensor& src, const Tensor& index, const char* op) {
  check_floating(src, op);
  TKF_CHECK(is_index(index.dtype()), op, ": index must be i32 or i64, got ",
            dtype_name(index.dtype()));
  TKF_CHECK(src.dim() == 3 && index.dim() == 2 && index.size(0) == src.size(0), op,
            ": expected src [G, M, D] and index [G, N], got ", shape_str(src.shape()), " and ",
            shape_str(index.shape()));
}

Tensor gather(const Tensor& src, const Tensor& index) {
  Tensor rows = empty_like(src, {src.size(0), index.size(1), src.size(2)});
  backend_of(src).gather_rows(src.contiguous(), index.contiguous(), rows);
  return rows;
}

// zeros(shape) with rows added at index: the gradient of a gather.
Tensor scatter_into_zeros(const Tensor& rows, const Tensor& index, const Shape& shape) {
  Tensor result = Tensor::zeros(shape, rows.dtype(), rows.device());
  backend_of(rows).scatter_add_rows(result, index, rows.contiguous());
  return result;
}
}  // namespace

std::pair<Tensor, Tensor> topk(const Tensor& x, std::int64_t k) {
  check_floating(x, "topk");
  TKF_CHECK(x.dim() >= 1, "topk: needs rank >= 1, got shape ", shape_str(x.shape()));
  const std::int64_t n = x.size(-1);
  TKF_CHECK(1 <= k && k <= n, "topk: k = ", k, " must be in [1, ", n, "] for shape ",
            shape_str(x.shape()));
  Shape out_shape = x.shape();
  out_shape.back() = k;
  Tensor values = empty_like(x, out_shape);
  Tensor indices = Tensor::empty(out_shape, DType::i64, x.device());
  backend_of(x).topk_rows(x.contiguous(), k, values, indices);
  values = record("topk", {x}, values, [indices, shape = x.shape(), n, k](const auto& g) {
    const std::int64_t rows = indices.numel() / k;
    return std::vector<Tensor>{
        scatter_into_zeros(g[0].reshape({rows, k, 1}), indices.view({rows, k}), {rows, n, 1})
            .view(shape)};
  });
  return {values, indices};
}

Tensor gather_rows(const Tensor& src, const Tensor& index) {
  check_row_index(src, index, "gather_rows");
  Tensor rows = gather(src, index);
  return record("gather_rows", {src}, rows,
                [index = index.contiguous(), shape = src.shape()](const auto& g) {
                  return std::vector<Tensor>{scatter_into_zeros(g[0], index, shape)};
                });
}

Tensor scatter_add_rows(const Tensor& dst, const Tensor& index, const Tensor& rows) {
  check_row_index(dst, index, "scatter_add_rows");
  check_compatible(dst, rows, "scatter_add_rows");
  TKF_CHECK(rows.shape() == Shape({dst.size(0), index.size(1), dst.size(2)}),
            "scatter_add_rows: rows ", shape_str(rows.shape()), " do not match dst ",
            shape_str(dst.shape()), " and index ", shape_str(index.shape()));
  Tensor result = dst.clone();
  backend_of(dst).scatter_add_rows(result, index.contiguous(), rows.contiguous());
  return record("scatter_add_rows", {dst, rows}, result,
                [index = index.contiguous()](const auto& g) {
                  const Tensor grad = g[0].contiguous();
                  return std::vector<Tensor>{grad, gather(grad, index)};
                });
}

}  // namespace topkformer::ops
