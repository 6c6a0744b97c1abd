// Backend parity as one table (as ggml's test-backend-ops): each row is a
// kernel call on operands made from the same values on every device, run on
// every built backend besides the CPU and compared with the CPU's result. A
// new kernel gets parity by a row. GPU runs: --gtest_filter='Cuda*:Nccl*'.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <functional>
#include <iterator>
#include <limits>
#include <ostream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "kernels/binary_reference.h"
#include "kernels/cross_entropy_reference.h"
#include "kernels/dropout_reference.h"
#include "kernels/gemm_reference.h"
#include "kernels/linear_attention_reference.h"
#include "kernels/mask_reference.h"
#include "kernels/reduce_reference.h"
#include "kernels/reference.h"
#include "kernels/sparse_reference.h"
#include "kernels/topk_scores_reference.h"
#include "kernels/unary_reference.h"
#include "test_util.h"
#include "topkformer/core/device.h"
#include "topkformer/core/runtime.h"

namespace topkformer::testing {
namespace {

using kernels::Backend;
using kernels::BinaryOp;
using kernels::RowMask;
using kernels::UnaryOp;

constexpr double infinity = std::numeric_limits<double>::infinity();

// An operand compared after the call: |device - cpu| <= tolerance *
// max(|cpu|, floor), infinities and NaNs exactly (tolerance 0: equal), or
// with same_bits the same bit patterns (-0 is not +0, NaN signs count).
struct Compared {
  std::size_t operand;
  double tolerance;
  double floor = 1.0;
  bool same_bits = false;
};

struct KernelCase {
  std::string name;  // <family>_<what>_<dtype>: letters, digits and _
  // The operands on `device`: inputs, then what the call writes. Values are
  // drawn on the CPU, so every device gets the same ones.
  std::function<std::vector<Tensor>(Device)> make;
  // The kernel call(s) on one device's operands.
  std::function<void(Backend&, const std::vector<Tensor>&)> call;
  std::vector<Compared> compared;
  // The CPU runs in f64 on the widened operands (exact), so that an f32
  // result is checked against the exact answer, not a second f32 rounding.
  bool reference_in_f64 = false;
  // A comparison beyond (or instead of) `compared`, of the device's operands
  // (copied to the CPU) with the CPU's, for results that may differ in more
  // than rounding (top-k scores: near-ties may swap).
  std::function<void(const std::vector<Tensor>& got, const std::vector<Tensor>& want)> check = {};
};

// gtest prints a parameter in failure messages and test lists: the name.
void PrintTo(const KernelCase& c, std::ostream* os) {
  *os << c.name;
}

std::string suffix(DType dtype) {
  return "_" + std::string(dtype_name(dtype));
}

// Sums taken in double in two orders differ by roundings of partial sums of
// size sqrt(terms) * sigma (a random walk): compare relative to that size.
double sum_floor(std::int64_t terms, double sigma = 1.0) {
  return std::max(1.0, std::sqrt(static_cast<double>(terms))) * sigma;
}

Shape without_last(const Shape& shape) {
  return Shape(shape.begin(), shape.end() - 1);
}

std::string shape_name(const Shape& shape) {
  std::string name;
  for (const std::int64_t extent : shape) {
    if (!name.empty()) name += 'x';
    name += std::to_string(extent);
  }
  return name;
}

// "n<size>", a part's name (built by +=: GCC 12 warns falsely on "n" + string).
std::string size_name(std::int64_t n) {
  std::string name = "n";
  name += std::to_string(n);
  return name;
}

// One row of several cases of one kernel (on each shape of a list): each
// part's operands in a block of bundle_stride, its call in turn. Under ctest
// a row is a process of its own, so small cases share one.
constexpr std::size_t bundle_stride = 4;

KernelCase bundle(const std::string& name, const std::vector<KernelCase>& parts) {
  std::vector<Compared> compared;
  for (std::size_t p = 0; p < parts.size(); ++p) {
    for (Compared c : parts[p].compared) {
      c.operand += p * bundle_stride;
      compared.push_back(c);
    }
  }
  return {name,
          [parts](Device device) {
            std::vector<Tensor> t;
            for (const KernelCase& part : parts) {
              std::vector<Tensor> operands = part.make(device);
              if (operands.size() > bundle_stride)
                throw std::logic_error(part.name + ": too many operands to bundle");
              operands.resize(bundle_stride);
              t.insert(t.end(), operands.begin(), operands.end());
            }
            return t;
          },
          [parts](Backend& backend, const std::vector<Tensor>& t) {
            for (std::size_t p = 0; p < parts.size(); ++p) {
              const auto first = t.begin() + static_cast<std::ptrdiff_t>(p * bundle_stride);
              parts[p].call(backend, std::vector<Tensor>(first, first + bundle_stride));
            }
          },
          compared, parts.front().reference_in_f64};
}

// ---- reduce ----

// Rows short enough for a warp, long enough for a block, and few long rows
// that are split into segments (a second pass adds the segments).
const Shape sum_row_shapes[] = {{1, 1},     {3, 17},     {33, 1},           {2, 3, 5},  {4, 33},
                                {3000, 7},  {300, 768},  {64, 1024},        {64, 1025}, {100, 5000},
                                {2, 70000}, {1, 100003}, {1, (1 << 20) + 7}};

const Shape max_row_shapes[] = {{1, 1},    {3, 17},     {33, 1},   {2, 3, 5},  {4, 33},
                                {3000, 7}, {100, 1024}, {7, 1025}, {30, 5000}, {2, 100000}};

const std::vector<std::pair<Shape, Shape>> broadcast_patterns = sum_to_broadcast_patterns(
    {{{3, 0}, {3, 1}},
     {{2, 0, 4}, {1, 0, 4}},  // nothing to write
     // Bias gradients: columns over many rows, several chunks and a second pass.
     {{3000, 768}, {1, 768}},
     {{3000, 7}, {1, 7}},
     {{3000, 5000}, {1, 5000}},
     {{8, 375, 64}, {1, 1, 64}},
     {{5, 3000, 4}, {5, 1, 4}},
     {{40, 50}, {1, 50}},  // one chunk: written directly
     // Rows: a warp or a block per output, long ones split into segments.
     {{64, 4096}, {64, 1}},
     {{2, 70000}, {2, 1}},
     {{1024, 1024}, {1, 1}},
     {{6, 7, 300}, {1, 7, 1}}});

// One block of the CPU's (2^16), several, one warp, one block and segments on the GPU.
const std::int64_t square_sizes[] = {0, 1, 1000, 1025, 65537, 300001, (1 << 22) + 3};

void add_reduce_cases(std::vector<KernelCase>& cases, DType dtype) {
  for (const Shape& shape : sum_row_shapes) {
    cases.push_back(
        {"reduce_sum_rows_" + shape_name(shape) + suffix(dtype),
         [=](Device device) {
           return std::vector<Tensor>{random_normal(shape, dtype, 60).to(device),
                                      Tensor::empty(without_last(shape), dtype, device)};
         },
         [](Backend& backend, const std::vector<Tensor>& t) { backend.sum_rows(t[0], t[1]); },
         {{1, tolerance(dtype), sum_floor(shape.back())}}});
  }
  for (const Shape& shape : max_row_shapes) {
    cases.push_back(
        {"reduce_max_rows_" + shape_name(shape) + suffix(dtype),
         [=](Device device) {
           return std::vector<Tensor>{random_normal(shape, dtype, 61).to(device),
                                      Tensor::empty(without_last(shape), dtype, device),
                                      Tensor::empty(without_last(shape), DType::i64, device)};
         },
         [](Backend& backend, const std::vector<Tensor>& t) { backend.max_rows(t[0], t[1], t[2]); },
         {{1, 0.0}, {2, 0.0}}});
  }
  for (const auto& [x_shape, out_shape] : broadcast_patterns) {
    const std::int64_t outputs = shape_numel(out_shape);
    const std::int64_t terms = outputs == 0 ? 0 : shape_numel(x_shape) / outputs;
    cases.push_back(
        {"reduce_sum_to_" + shape_name(x_shape) + "_to_" + shape_name(out_shape) + suffix(dtype),
         [=](Device device) {
           // Garbage in out first: sum_to overwrites, it does not accumulate.
           return std::vector<Tensor>{random_normal(x_shape, dtype, 62).to(device),
                                      random_normal(out_shape, dtype, 63).to(device)};
         },
         [](Backend& backend, const std::vector<Tensor>& t) { backend.sum_to(t[0], t[1]); },
         {{1, tolerance(dtype), sum_floor(terms)}}});
  }
  for (const std::int64_t n : square_sizes) {
    cases.push_back(
        {"reduce_sum_squares_" + std::to_string(n) + suffix(dtype),
         [=](Device device) {
           return std::vector<Tensor>{random_normal({n}, dtype, 64, 3.0).to(device),
                                      Tensor::empty({1}, DType::f64, device)};
         },
         [](Backend& backend, const std::vector<Tensor>& t) { backend.sum_squares(t[0], t[1]); },
         // Positive terms in double in two orders: no cancellation.
         {{1, 1e-12}}});
  }
}

// ---- softmax ----

// Scores of two kinds: normal ones and large magnitudes, where exp overflows
// f32 unless the row maximum is subtracted.
Tensor make_scores(const Shape& shape, DType dtype, bool large, std::uint64_t seed) {
  return large ? random_uniform(shape, dtype, seed, -80.0, 80.0)
               : random_normal(shape, dtype, seed, 3.0);
}

// The case's mask with its key lengths on `device` (the kernels take them on
// the data's device or on the CPU).
RowMask mask_on(const MaskCase& c, Device device) {
  RowMask mask = make_mask(c);
  if (mask.key_lengths.defined()) mask.key_lengths = mask.key_lengths.to(device);
  return mask;
}

// The f32 tolerance grows with the logits: exp(x - max) carries a relative
// error of |x - max| * 2^-24 from rounding its argument, up to 5e-6 for
// arguments near -87 (below which f32 underflows), and the log-probability
// x - lse is a difference of numbers of the logits' size.
double softmax_tolerance(DType dtype, bool large) {
  if (dtype == DType::f64) return 1e-12;
  return large ? 3e-5 : 1e-5;
}

// Every mask case, with key lengths on the data's device or on the CPU; the
// operands are x, out and the key lengths (undefined without them).
void add_softmax_cases(std::vector<KernelCase>& cases, DType dtype) {
  for (const MaskCase& c : mask_edge_cases()) {
    for (const bool lengths_on_cpu : {false, true}) {
      if (lengths_on_cpu && c.key_lengths.empty()) continue;
      const std::string where = lengths_on_cpu ? "_lengths_on_cpu" : "";
      const auto lengths = [=](Device device) {
        return mask_on(c, lengths_on_cpu ? Device::cpu() : device).key_lengths;
      };
      const auto mask_of = [=](const Tensor& key_lengths) {
        RowMask mask = make_mask(c);
        mask.key_lengths = key_lengths;
        return mask;
      };
      for (const bool large : {false, true}) {
        for (const bool log : {false, true}) {
          // Probabilities relative (the floor only covers f32's underflow to
          // subnormals), log-probabilities relative to the logits' size.
          const double floor = log ? (large ? 80.0 : 3.0) : 1e-30;
          cases.push_back({"softmax_" + c.name + (large ? "_large" : "") + (log ? "_log" : "") +
                               where + suffix(dtype),
                           [=](Device device) {
                             return std::vector<Tensor>{
                                 make_scores(c.shape, dtype, large, 500).to(device),
                                 Tensor::empty(c.shape, dtype, device), lengths(device)};
                           },
                           [=](Backend& backend, const std::vector<Tensor>& t) {
                             backend.softmax(t[0], mask_of(t[2]), log, t[1]);
                           },
                           {{1, softmax_tolerance(dtype, large), floor}},
                           true});
        }
      }
      for (const double value : {-infinity, -3.5}) {
        // Exact: the value is representable, every other entry keeps its bits.
        cases.push_back({"softmax_fill_masked_" + c.name + (value < -4 ? "_minus_inf" : "_value") +
                             where + suffix(dtype),
                         [=](Device device) {
                           return std::vector<Tensor>{random_normal(c.shape, dtype, 508).to(device),
                                                      lengths(device)};
                         },
                         [=](Backend& backend, const std::vector<Tensor>& t) {
                           backend.fill_masked(t[0], mask_of(t[1]), value);
                         },
                         {{0, 0.0}}});
      }
    }
    // The backward takes the forward output, masked entries included (0, or
    // -inf for log-softmax), as in training.
    for (const bool log : {false, true}) {
      cases.push_back({"softmax_backward_" + c.name + (log ? "_log" : "") + suffix(dtype),
                       [=](Device device) {
                         const Tensor y = Tensor::empty(c.shape, dtype);
                         cpu_kernels().softmax(random_normal(c.shape, dtype, 505, 2.0),
                                               make_mask(c), log, y);
                         return std::vector<Tensor>{
                             y.to(device), random_normal(c.shape, dtype, 506).to(device),
                             random_normal(c.shape, dtype, 507).to(device)};  // dx, overwritten
                       },
                       [=](Backend& backend, const std::vector<Tensor>& t) {
                         backend.softmax_backward(t[0], t[1], log, t[2]);
                       },
                       {{2, tolerance(dtype)}},
                       true});
    }
  }
}

// ---- layer_norm ----

constexpr double layer_norm_eps = 1e-5;

// Both sides take each sum in double, in different orders: on top of the
// dtype's rounding they differ by roundings of partial sums, which for
// `terms` terms of size `scale` grow like sqrt(terms) * scale.
double layer_norm_tolerance(DType dtype, std::int64_t terms, double scale) {
  return tolerance(dtype) + 16 * 0x1p-53 * std::sqrt(static_cast<double>(terms)) * scale;
}

struct LayerNormShape {
  Shape shape;
  double offset;  // rows of N(offset, 1)
};

// Rows of 1 to 5000 columns (a warp per row up to 1024, a block beyond), 3000
// rows so that the column sums take several chunks and a second pass, and
// rows shifted far from 0.
const LayerNormShape layer_norm_shapes[] = {
    {{3000, 1}, 0.0},    {{3000, 7}, 0.0},   {{3000, 768}, 0.0},
    {{3000, 5000}, 0.0}, {{2, 3, 33}, 0.0},  {{40, 1024}, 0.0},
    {{40, 1025}, 0.0},   {{300, 768}, 50.0}, {{100, 5000}, 50.0}};

// x, gamma, beta on the CPU.
std::vector<Tensor> layer_norm_inputs(const LayerNormShape& c, DType dtype) {
  const Tensor x = random_normal(c.shape, dtype, 80);
  std::vector<double> values = read_values(x);
  for (double& v : values) v += c.offset;
  write_values(x, values);
  const std::int64_t d = c.shape.back();
  return {x, random_normal({d}, dtype, 81), random_normal({d}, dtype, 82)};
}

void add_layer_norm_cases(std::vector<KernelCase>& cases, DType dtype) {
  for (const LayerNormShape& c : layer_norm_shapes) {
    const std::int64_t d = c.shape.back(), rows = shape_numel(c.shape) / d;
    const std::string name = shape_name(c.shape) + (c.offset != 0 ? "_offset" : "") + suffix(dtype);
    const double forward_tolerance = layer_norm_tolerance(dtype, d, 4.0 + c.offset);
    cases.push_back({"layer_norm_" + name,
                     [=](Device device) {
                       std::vector<Tensor> t;
                       for (const Tensor& input : layer_norm_inputs(c, dtype))
                         t.push_back(input.to(device));
                       t.push_back(Tensor::empty(c.shape, dtype, device));
                       t.push_back(Tensor::empty({rows}, dtype, device));
                       t.push_back(Tensor::empty({rows}, dtype, device));
                       return t;
                     },
                     [](Backend& backend, const std::vector<Tensor>& t) {
                       backend.layer_norm(t[0], t[1], t[2], layer_norm_eps, t[3], t[4], t[5]);
                     },
                     {{3, forward_tolerance}, {4, forward_tolerance}, {5, forward_tolerance}}});
    // The backward from the CPU's statistics, so that only the backward is
    // compared; dgamma and dbeta are column sums of `rows` terms of order 1.
    const double column_tolerance = layer_norm_tolerance(dtype, rows, 1.0);
    const double column_floor = std::sqrt(static_cast<double>(rows));
    cases.push_back(
        {"layer_norm_backward_" + name,
         [=](Device device) {
           const std::vector<Tensor> in = layer_norm_inputs(c, dtype);
           const Tensor y = Tensor::empty(c.shape, dtype), mean = Tensor::empty({rows}, dtype),
                        rstd = Tensor::empty({rows}, dtype);
           cpu_kernels().layer_norm(in[0], in[1], in[2], layer_norm_eps, y, mean, rstd);
           return std::vector<Tensor>{in[0].to(device),
                                      in[1].to(device),
                                      mean.to(device),
                                      rstd.to(device),
                                      random_normal(c.shape, dtype, 83).to(device),
                                      Tensor::empty(c.shape, dtype, device),
                                      random_normal({d}, dtype, 90).to(device),  // overwritten
                                      random_normal({d}, dtype, 91).to(device)};
         },
         [](Backend& backend, const std::vector<Tensor>& t) {
           backend.layer_norm_backward(t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]);
         },
         {{5, layer_norm_tolerance(dtype, d, 4.0)},
          {6, column_tolerance, column_floor},
          {7, column_tolerance, column_floor}}});
  }
}

// ---- optimizer ----

const Shape update_shapes[] = {{1}, {37, 129}, {100003}};
constexpr int update_steps = 5;

// Both devices compute in double the same operations in the same order; they
// may differ only where one compiler fuses a multiply-add the other does not,
// by an ulp of double, after which an f32 result almost always rounds the
// same way. So: 4 ulp of the dtype, relative to the value or to the size of
// the terms it is computed from (`floor`), where a moment cancels to near 0.
double four_ulps(DType dtype) {
  return 4 * (dtype == DType::f64 ? 0x1p-52 : 0x1p-23);
}

// The parameter (seed), `states` zero state tensors, then the gradients of
// every step (seed + 1 + step).
std::vector<Tensor> update_operands(const Shape& shape, DType dtype, std::uint64_t seed, int states,
                                    Device device) {
  std::vector<Tensor> t{random_normal(shape, dtype, seed).to(device)};
  for (int s = 0; s < states; ++s) t.push_back(Tensor::zeros(shape, dtype, device));
  for (int step = 1; step <= update_steps; ++step) {
    t.push_back(random_normal(shape, dtype, seed + 1 + step).to(device));
  }
  return t;
}

// Five steps of each update, every other one clipped (grad_scale 0.3).
void add_optimizer_cases(std::vector<KernelCase>& cases, DType dtype) {
  for (const Shape& shape : update_shapes) {
    for (const double weight_decay : {0.0, 0.01}) {
      cases.push_back(
          {"optimizer_adamw_" + shape_name(shape) + (weight_decay > 0 ? "_decay" : "") +
               suffix(dtype),
           [=](Device device) { return update_operands(shape, dtype, 70, 2, device); },
           [=](Backend& backend, const std::vector<Tensor>& t) {
             kernels::AdamWStep step;
             step.learning_rate = 1e-2;
             step.weight_decay = weight_decay;
             for (int s = 1; s <= update_steps; ++s) {
               step.grad_scale = s % 2 == 0 ? 0.3 : 1.0;
               step.bias_correction1 = 1.0 - std::pow(step.beta1, s);
               step.bias_correction2 = 1.0 - std::pow(step.beta2, s);
               backend.adamw_update(t[0], t[2 + s], t[1], t[2], step);
             }
           },
           // Gradients are N(0, 1): m's terms are up to ~0.5, v's are >= 0
           // (no cancellation) and p is N(0, 1) moved by ~lr per step.
           {{0, four_ulps(dtype)}, {1, four_ulps(dtype)}, {2, four_ulps(dtype), 1e-30}}});
    }
    for (const auto& [momentum, weight_decay] :
         {std::pair{0.0, 0.0}, std::pair{0.9, 0.0}, std::pair{0.9, 1e-4}}) {
      cases.push_back({"optimizer_sgd_" + shape_name(shape) + (momentum > 0 ? "_momentum" : "") +
                           (weight_decay > 0 ? "_decay" : "") + suffix(dtype),
                       [=](Device device) { return update_operands(shape, dtype, 80, 1, device); },
                       [=](Backend& backend, const std::vector<Tensor>& t) {
                         kernels::SgdStep step;
                         step.learning_rate = 0.1;
                         step.momentum = momentum;
                         step.weight_decay = weight_decay;
                         for (int s = 1; s <= update_steps; ++s) {
                           step.grad_scale = s % 2 == 0 ? 0.3 : 1.0;
                           backend.sgd_update(t[0], t[1 + s], t[1], step);
                         }
                       },
                       // The velocity sums terms of size ~1 and p moves by lr times it.
                       {{0, four_ulps(dtype)}, {1, four_ulps(dtype)}}});
    }
  }
}

// ---- gemm ----

std::string matrix_layout_name(MatrixLayout layout) {
  switch (layout) {
    case MatrixLayout::row_major:
      return "rows";
    case MatrixLayout::column_major:
      return "columns";
    case MatrixLayout::padded_row_major:
      return "padded_rows";
    case MatrixLayout::padded_column_major:
      return "padded_columns";
  }
  return "unknown";
}

// Sets the matmul precision for a scope (the CPU's gemm ignores it).
class MatmulPrecisionScope {
 public:
  explicit MatmulPrecisionScope(MatmulPrecision precision) : saved_(matmul_precision()) {
    set_matmul_precision(precision);
  }
  ~MatmulPrecisionScope() { set_matmul_precision(saved_); }
  MatmulPrecisionScope(const MatmulPrecisionScope&) = delete;
  MatmulPrecisionScope& operator=(const MatmulPrecisionScope&) = delete;

 private:
  MatmulPrecision saved_;
};

struct GemmCase {
  std::string what;
  Shape batch;
  std::int64_t m, n, k;
  bool transpose_a, transpose_b;
  MatrixLayout layout_a, layout_b;
  double alpha, beta;
  double tolerance;  // 0: the dtype's
  MatmulPrecision precision = MatmulPrecision::fp32;
};

// TF32 keeps 10 mantissa bits and bf16 8 of the inputs (accumulating in
// fp32), so products of unit normals carry a relative error of about 2^-11
// and 2^-8 per term, averaging down over k terms: bounds with a safety
// factor; the fp32 row checks that the default is really not reduced.
// clang-format off
const GemmCase gemm_cases[] = {
    {"one_row_alpha_beta", {}, 1, 300, 70, false, false, MatrixLayout::row_major, MatrixLayout::row_major, 0.5, 2.0, 0.0},
    {"one_column_alpha_beta", {}, 300, 1, 70, false, true, MatrixLayout::row_major, MatrixLayout::row_major, -1.5, 1.0, 0.0},
    {"inner_one", {}, 64, 64, 1, true, false, MatrixLayout::padded_row_major, MatrixLayout::row_major, 1.0, -1.0, 0.0},
    {"batch", {5}, 33, 17, 65, false, true, MatrixLayout::row_major, MatrixLayout::row_major, 1.0, 0.0, 0.0},
    // The attention shapes: [B, H, L, d] x [B, H, L, d]^T.
    {"attention", {2, 3}, 50, 50, 16, false, true, MatrixLayout::row_major, MatrixLayout::row_major, 0.25, 0.0, 0.0},
    // Padded operands do not merge their batch dimensions: one call per outer item.
    {"padded_batches", {2, 3}, 20, 30, 40, true, false, MatrixLayout::padded_row_major, MatrixLayout::column_major, 1.0, 1.0, 0.0},
    {"tf32", {2}, 128, 96, 256, false, true, MatrixLayout::row_major, MatrixLayout::row_major, 1.0, 0.0, 4e-3, MatmulPrecision::tf32},
    {"bf16", {2}, 128, 96, 256, false, true, MatrixLayout::row_major, MatrixLayout::row_major, 1.0, 0.0, 3e-2, MatmulPrecision::bf16},
    {"fp32", {2}, 128, 96, 256, false, true, MatrixLayout::row_major, MatrixLayout::row_major, 1.0, 0.0, 0.0},
};
// clang-format on

// Sums of k products of unit normals have magnitude ~sqrt(k): the bound is
// relative to that.
KernelCase gemm_case(const GemmCase& g, DType dtype) {
  const std::string dims = (g.batch.empty() ? "" : shape_name(g.batch) + "x") +
                           shape_name({g.m, g.n, g.k}) + (g.transpose_a ? "_at" : "") +
                           (g.transpose_b ? "_bt" : "");
  return {"gemm_" + g.what + "_" + dims + "_" + matrix_layout_name(g.layout_a) + "_" +
              matrix_layout_name(g.layout_b) + suffix(dtype),
          [=](Device device) {
            Shape c_shape = g.batch;
            c_shape.push_back(g.m);
            c_shape.push_back(g.n);
            return std::vector<Tensor>{
                g.transpose_a ? matrix(g.batch, g.k, g.m, g.layout_a, dtype, 1, device)
                              : matrix(g.batch, g.m, g.k, g.layout_a, dtype, 1, device),
                g.transpose_b ? matrix(g.batch, g.n, g.k, g.layout_b, dtype, 2, device)
                              : matrix(g.batch, g.k, g.n, g.layout_b, dtype, 2, device),
                random_normal(c_shape, dtype, 3).to(device)};
          },
          [=](Backend& backend, const std::vector<Tensor>& t) {
            const MatmulPrecisionScope precision(g.precision);
            backend.gemm(t[0], g.transpose_a, t[1], g.transpose_b, t[2], g.alpha, g.beta);
          },
          {{2, g.tolerance > 0 ? g.tolerance : tolerance(dtype),
            std::max(1.0, std::sqrt(static_cast<double>(g.k)))}}};
}

void add_gemm_cases(std::vector<KernelCase>& cases, DType dtype) {
  // Every transpose combination on every view.
  const MatrixLayout views[] = {MatrixLayout::row_major, MatrixLayout::column_major,
                                MatrixLayout::padded_row_major};
  for (const bool ta : {false, true}) {
    for (const bool tb : {false, true}) {
      for (const MatrixLayout va : views) {
        for (const MatrixLayout vb : views) {
          cases.push_back(
              gemm_case({"views", {}, 37, 29, 45, ta, tb, va, vb, 1.0, 0.0, 0.0}, dtype));
        }
      }
    }
  }
  for (const GemmCase& g : gemm_cases) {
    // The reduced precisions apply to f32 only.
    if (dtype == DType::f32 || g.precision == MatmulPrecision::fp32) {
      cases.push_back(gemm_case(g, dtype));
    }
  }
  // a is one matrix expanded over the batch (stride 0), b a permuted view
  // whose batch dimensions are in the wrong order to merge.
  cases.push_back({"gemm_broadcast_and_permuted_batches" + suffix(dtype),
                   [=](Device device) {
                     return std::vector<Tensor>{
                         random_normal({1, 1, 12, 9}, dtype, 4).to(device).expand({3, 4, 12, 9}),
                         random_normal({4, 3, 9, 7}, dtype, 5).to(device).permute({1, 0, 2, 3}),
                         Tensor::zeros({3, 4, 12, 7}, dtype, device)};
                   },
                   [](Backend& backend, const std::vector<Tensor>& t) {
                     backend.gemm(t[0], false, t[1], false, t[2], 1.0, 0.0);
                   },
                   {{2, tolerance(dtype), 3.0}}});
}

// ---- elementwise ----

// Shapes that are not multiples of a block or a warp, one element, and rows
// longer than a block.
const std::pair<std::int64_t, std::int64_t> elementwise_shapes[] = {
    {1, 1}, {3, 17}, {33, 5}, {7, 5000}};

bool is_gelu(UnaryOp op) {
  return op == UnaryOp::gelu_tanh || op == UnaryOp::gelu_erf;
}

// Both sides evaluate the same formula (kernels/activations.h) with their
// own exp, log, tanh and erf, which are within 2 ulp: a few ulp of the
// result, except where gelu(x) = x/2 (1 + tanh(..)) cancels for negative x
// (gelu(-4) ~ -1e-4 from terms of size 2): there the error is a few ulp of
// those terms, hence an absolute floor of 1. The other ops stay relative.
double unary_floor(UnaryOp op) {
  return is_gelu(op) ? 1.0 : 1e-6;
}

// A binary op on two inputs made by `a` and `b` into a contiguous [rows,
// cols] output: one correctly rounded operation per element on every
// device, so exact.
template <typename A, typename B>
KernelCase binary_case(const std::string& name, BinaryOp op, Shape shape, DType dtype, A a, B b) {
  return {
      name + suffix(dtype),
      [=](Device device) {
        return std::vector<Tensor>{a(device), b(device), Tensor::empty(shape, dtype, device)};
      },
      [=](Backend& backend, const std::vector<Tensor>& t) { backend.binary(op, t[0], t[1], t[2]); },
      {{2, 0.0}}};
}

void add_elementwise_map_cases(std::vector<KernelCase>& cases, DType dtype) {
  for (const UnaryOp op : all_unary_ops) {
    const double low = needs_positive_input(op) ? 0.01 : -4.0;
    for (const Layout layout : all_layouts()) {
      std::vector<KernelCase> parts;
      for (const auto& [rows, cols] : elementwise_shapes) {
        parts.push_back(
            {shape_name({rows, cols}),
             [=](Device device) {
               return std::vector<Tensor>{
                   strided_input(layout, rows, cols, dtype, 40, low, 4.0, device),
                   Tensor::empty({rows, cols}, dtype, device)};
             },
             [=](Backend& backend, const std::vector<Tensor>& t) { backend.unary(op, t[0], t[1]); },
             {{1, tolerance(dtype), unary_floor(op)}}});
      }
      cases.push_back(bundle(
          "elementwise_unary_" + op_name(op) + "_" + layout_name(layout) + suffix(dtype), parts));
    }
  }
  // The backward's inputs x (for tanh: y in (-1, 1)) and dy in two layouts
  // each. relu's derivative at x = 0 is 0 on both sides (x > 0 is false).
  // Floor 1: 1 - y^2 and the gelu derivatives cancel like gelu itself.
  for (const UnaryOp op : unary_backward_ops) {
    const double low = op == UnaryOp::tanh ? -0.999 : -4.0;
    const double high = op == UnaryOp::tanh ? 0.999 : 4.0;
    for (const Layout x_layout : all_layouts()) {
      for (const Layout dy_layout :
           {Layout::contiguous, Layout::transposed, Layout::row_broadcast}) {
        std::vector<KernelCase> parts;
        for (const auto& [rows, cols] : elementwise_shapes) {
          parts.push_back({shape_name({rows, cols}),
                           [=](Device device) {
                             return std::vector<Tensor>{
                                 strided_input(x_layout, rows, cols, dtype, 41, low, high, device),
                                 strided_input(dy_layout, rows, cols, dtype, 42, -2.0, 2.0, device),
                                 Tensor::empty({rows, cols}, dtype, device)};
                           },
                           [=](Backend& backend, const std::vector<Tensor>& t) {
                             backend.unary_backward(op, t[0], t[1], t[2]);
                           },
                           {{2, tolerance(dtype)}}});
        }
        cases.push_back(bundle("elementwise_unary_backward_" + op_name(op) + "_" +
                                   layout_name(x_layout) + "_dy_" + layout_name(dy_layout) +
                                   suffix(dtype),
                               parts));
      }
    }
  }
  for (const BinaryOp op : all_binary_ops) {
    for (const Layout layout_a : all_layouts()) {
      for (const Layout layout_b : all_layouts()) {
        std::vector<KernelCase> parts;
        for (const auto& [rows, cols] : {std::pair<std::int64_t, std::int64_t>{3, 17}, {9, 700}}) {
          parts.push_back(binary_case(
              shape_name({rows, cols}), op, {rows, cols}, dtype,
              [=](Device device) {
                return strided_input(layout_a, rows, cols, dtype, 50, -3.0, 3.0, device);
              },
              // b away from 0: division stays well conditioned.
              [=](Device device) {
                return strided_input(layout_b, rows, cols, dtype, 51, 0.5, 2.0, device);
              }));
        }
        cases.push_back(bundle("elementwise_binary_" + op_name(op) + "_" + layout_name(layout_a) +
                                   "_" + layout_name(layout_b) + suffix(dtype),
                               parts));
      }
    }
  }
  // Dimensions that cannot be coalesced: a rank-3 permutation against a
  // stride-0 expansion, and a rank-4 mix of both into a strided output (a
  // transposed view of a padded buffer).
  cases.push_back(binary_case(
      "elementwise_binary_permuted_and_expanded", BinaryOp::mul, {3, 4, 5}, dtype,
      [=](Device device) {
        return random_normal({5, 3, 4}, dtype, 52).to(device).permute({1, 2, 0});
      },
      [=](Device device) {
        return random_normal({3, 1, 5}, dtype, 53).to(device).expand({3, 4, 5});
      }));
  cases.push_back({"elementwise_binary_strided_output" + suffix(dtype),
                   [=](Device device) {
                     const Tensor buffer = Tensor::zeros({2, 7, 9, 8}, dtype, device);
                     return std::vector<Tensor>{
                         random_normal({6, 1, 7, 2}, dtype, 54).to(device).expand({6, 9, 7, 2}),
                         random_normal({2, 7, 9, 6}, dtype, 55).to(device).permute({3, 2, 1, 0}),
                         buffer, buffer.narrow(3, 1, 6).permute({3, 2, 1, 0})};
                   },
                   [](Backend& backend, const std::vector<Tensor>& t) {
                     backend.binary(BinaryOp::sub, t[0], t[1], t[3]);
                   },
                   {{2, 0.0}}});
  // 18 dimensions that do not merge: more than one launch takes, so the
  // kernel runs on slices.
  const Shape many(18, 2);
  std::vector<int> reversed(many.size());
  for (std::size_t d = 0; d < many.size(); ++d) reversed[d] = static_cast<int>(many.size() - 1 - d);
  cases.push_back(binary_case(
      "elementwise_binary_18_dimensions", BinaryOp::add, many, dtype,
      [=](Device device) { return random_normal(many, dtype, 56).to(device).permute(reversed); },
      [=](Device device) { return random_normal(many, dtype, 57).to(device); }));
  cases.push_back({"elementwise_unary_tanh_18_dimensions" + suffix(dtype),
                   [=](Device device) {
                     return std::vector<Tensor>{
                         random_normal(many, dtype, 56).to(device).permute(reversed),
                         Tensor::empty(many, dtype, device)};
                   },
                   [](Backend& backend, const std::vector<Tensor>& t) {
                     backend.unary(UnaryOp::tanh, t[0], t[1]);
                   },
                   {{1, tolerance(dtype), 1e-6}}});
  // More elements than the grid has threads (65536 blocks of 256): the
  // grid-stride loops cover the rest, dense and strided.
  const std::int64_t rows = 4099, cols = 4097;  // 16.8M > 2^24 threads
  const auto big = [=](Device device) {
    return random_uniform({rows, cols}, dtype, 58, -1.0, 1.0).to(device);
  };
  cases.push_back(binary_case("elementwise_binary_more_elements_than_threads", BinaryOp::add,
                              {rows, cols}, dtype, big, big));
  cases.push_back(binary_case(
      "elementwise_binary_more_elements_than_threads_broadcast", BinaryOp::mul, {rows, cols}, dtype,
      big, [=](Device device) {
        return random_uniform({1, cols}, dtype, 59, -1.0, 1.0).to(device).expand({rows, cols});
      }));
  // Scale and shift: both sides fuse scale * v + shift into one multiply-add
  // where they can; the tolerance allows for one that does not.
  for (const Layout layout : all_layouts()) {
    std::vector<KernelCase> parts;
    for (const auto& [r, c] : elementwise_shapes) {
      parts.push_back({shape_name({r, c}),
                       [=](Device device) {
                         return std::vector<Tensor>{
                             strided_input(layout, r, c, dtype, 60, -2.0, 2.0, device),
                             Tensor::empty({r, c}, dtype, device)};
                       },
                       [](Backend& backend, const std::vector<Tensor>& t) {
                         backend.affine(t[0], -1.5, 0.25, t[1]);
                       },
                       {{1, tolerance(dtype)}}});
    }
    cases.push_back(bundle("elementwise_affine_" + layout_name(layout) + suffix(dtype), parts));
  }
  // gemm relies on affine(c, beta, 0, c).
  cases.push_back({"elementwise_affine_in_place" + suffix(dtype),
                   [=](Device device) {
                     return std::vector<Tensor>{random_normal({33, 3}, dtype, 61).to(device)};
                   },
                   [](Backend& backend, const std::vector<Tensor>& t) {
                     backend.affine(t[0], 3.0, -1.0, t[0]);
                   },
                   {{0, tolerance(dtype)}}});
}

// The views of the CPU's fill test; storage outside the view is untouched.
const std::pair<const char*, std::function<Tensor(const Tensor&)>> fill_views[] = {
    {"strides_20_3", [](const Tensor& t) { return t.slice(0, 1, 6, 2).slice(1, 0, 10, 3); }},
    {"strides_1_10", [](const Tensor& t) { return t.narrow(1, 2, 5).transpose(0, 1); }},
    {"column", [](const Tensor& t) { return t.select(1, 9); }},
    {"contiguous_rows", [](const Tensor& t) { return t.narrow(0, 2, 3); }},
    {"scalar", [](const Tensor& t) { return t.select(0, 4).select(0, 3); }},
    {"empty", [](const Tensor& t) { return t.narrow(0, 0, 0); }}};

struct ArangeCase {
  std::string name;
  DType dtype;
  double start, step;
};

// fill, arange and copy, in every dtype they take (not only the floating ones).
void add_elementwise_fill_cases(std::vector<KernelCase>& cases) {
  for (const DType dtype : {DType::f32, DType::f64, DType::i32, DType::i64, DType::u8}) {
    for (std::size_t v = 0; v < std::size(fill_views); ++v) {
      const auto& [view_name, view] = fill_views[v];
      const double value = dtype == DType::u8 ? 200.0 : -40.0 - double(v);
      cases.push_back(
          {"elementwise_fill_" + std::string(view_name) + suffix(dtype),
           [=](Device device) {
             const Tensor base = Tensor::full({6, 10}, 7.0, dtype, device);
             return std::vector<Tensor>{base, view(base)};
           },
           [=](Backend& backend, const std::vector<Tensor>& t) { backend.fill(t[1], value); },
           {{0, 0.0}}});
    }
  }
  cases.push_back(
      {"elementwise_fill_every_other_column_fraction_f64",
       [](Device device) {
         const Tensor base = Tensor::zeros({4, 9}, DType::f64, device);
         return std::vector<Tensor>{base, base.slice(1, 1, 9, 2)};
       },
       [](Backend& backend, const std::vector<Tensor>& t) { backend.fill(t[1], -1.25); },
       {{0, 0.0}}});
  // Element i is start + i * step rounded once, as on the CPU: bitwise equal.
  const ArangeCase arange_cases[] = {{"minus_3_by_0_1", DType::f32, -3.0, 0.1},
                                     {"minus_3_by_0_1", DType::f64, -3.0, 0.1},
                                     {"1e6_by_minus_7_5", DType::f64, 1e6, -7.5},
                                     {"0_5_by_1e_3", DType::f32, 0.5, 1e-3},
                                     {"5_by_3", DType::i32, 5.0, 3.0},
                                     {"minus_40_by_2", DType::i64, -40.0, 2.0},
                                     {"0_by_1", DType::u8, 0.0, 1.0}};
  for (const ArangeCase& c : arange_cases) {
    std::vector<KernelCase> parts;
    for (const std::int64_t n : {0, 1, 17, 256, 1000, 100003}) {
      const std::int64_t count = c.dtype == DType::u8 ? std::min<std::int64_t>(n, 256) : n;
      if (c.dtype == DType::u8 && n > 256) continue;  // the same 256 elements again
      parts.push_back({size_name(count),
                       [=](Device device) {
                         return std::vector<Tensor>{Tensor::empty({count}, c.dtype, device)};
                       },
                       [=](Backend& backend, const std::vector<Tensor>& t) {
                         backend.arange(t[0], c.start, c.step);
                       },
                       {{0, 0.0}}});
    }
    cases.push_back(bundle("elementwise_arange_" + c.name + suffix(c.dtype), parts));
  }
  // The backend's copy: strided views on both sides with a conversion, and
  // from the host.
  cases.push_back({"elementwise_copy_transposed_into_padded_f64_to_f32",
                   [](Device device) {
                     const Tensor target = Tensor::zeros({7, 9}, DType::f32, device);
                     return std::vector<Tensor>{
                         random_normal({5, 7}, DType::f64, 62).to(device).transpose(0, 1), target,
                         target.narrow(1, 1, 5)};
                   },
                   [](Backend& backend, const std::vector<Tensor>& t) { backend.copy(t[0], t[2]); },
                   {{1, 0.0}}});
  cases.push_back({"elementwise_copy_from_the_host_f64",
                   [](Device device) {
                     return std::vector<Tensor>{random_normal({5, 7}, DType::f64, 62),
                                                Tensor::empty({5, 7}, DType::f64, device)};
                   },
                   [](Backend& backend, const std::vector<Tensor>& t) { backend.copy(t[0], t[1]); },
                   {{1, 0.0}}});
}

// ---- random ----

// Offsets at each position in a Philox block (four words), and one whose
// block index passes 2^32 (the counter's high word).
const std::uint64_t philox_offsets[] = {0, 1, 2, 3, 6, (std::uint64_t{1} << 34) + 5};
const std::uint64_t philox_seeds[] = {20240917, 0xfedcba9876543210ULL};
const std::int64_t random_sizes[] = {1, 2, 3, 5, 17, 1000, 100003};

constexpr PhiloxState dropout_state{0x123456789abcdefULL, 6};  // inside a Philox block

std::string offset_name(std::uint64_t offset) {
  return offset > 1000 ? "2p34_plus_5" : std::to_string(offset);
}

// x uniform in [0.5, 1.5): a zero output means a dropped element.
Tensor dropout_input(const Shape& shape, DType dtype, std::uint64_t seed) {
  return random_uniform(shape, dtype, seed, 0.5, 1.5);
}

// Dropout of inputs()[0] into a new output, the addressing's columns (if
// any) being inputs()[1] on the device: the same keep decisions (integer
// comparisons of the same words) and the same product x * float(1 / (1 - p)),
// so exact.
KernelCase dropout_case(const std::string& name, std::function<std::vector<Tensor>()> inputs,
                        double p, PhiloxState state, kernels::DropoutAddressing addressing = {}) {
  return {name,
          [=](Device device) {
            const std::vector<Tensor> in = inputs();
            return std::vector<Tensor>{in[0].to(device),
                                       Tensor::empty(in[0].shape(), in[0].dtype(), device),
                                       in.size() > 1 ? in[1].to(device) : Tensor()};
          },
          [=](Backend& backend, const std::vector<Tensor>& t) {
            kernels::DropoutAddressing on_device = addressing;
            on_device.columns = t[2];
            backend.dropout(t[0], p, state, on_device, t[1]);
          },
          {{1, 0.0}}};
}

void add_random_cases(std::vector<KernelCase>& cases, DType dtype) {
  const std::pair<double, double> ranges[] = {{0.0, 1.0}, {-2.0, 3.0}, {-1.0, 4.0}};
  const std::pair<double, double> normals[] = {{0.0, 1.0}, {1.5, 2.0}, {-0.25, 0.02}};
  // The same uniforms u1, u2 and the same formula sqrt(-2 log u1) cos(2 pi u2)
  // in double, where CUDA's log and cos are within 1 and 2 ulp and glibc's
  // within 1: z agrees to a few ulp of double. mean + std * z is one fused
  // multiply-add on both, so an f64 result is within ~1e-15 of std * 6 (z is
  // at most sqrt(2 ln 2^24) < 6); an f32 result is that double rounded, equal
  // unless the double lies within 1e-15 of a rounding boundary, and then one
  // f32 ulp (2^-23 relative) away.
  const double normal_tolerance = dtype == DType::f64 ? 1e-14 : 0x1p-23;
  std::vector<Compared> normal_compared;
  for (std::size_t r = 0; r < std::size(normals); ++r)
    normal_compared.push_back({r, normal_tolerance, normals[r].second});
  for (const std::uint64_t offset : philox_offsets) {
    // One output per range: the same words and the same arithmetic (one
    // fused multiply-add in double), so the same bits.
    for (const std::uint64_t seed : philox_seeds) {
      std::vector<KernelCase> parts;
      for (const std::int64_t n : random_sizes) {
        parts.push_back({size_name(n),
                         [=](Device device) {
                           std::vector<Tensor> t;
                           for (std::size_t r = 0; r < std::size(ranges); ++r)
                             t.push_back(Tensor::empty({n}, dtype, device));
                           return t;
                         },
                         [=](Backend& backend, const std::vector<Tensor>& t) {
                           for (std::size_t r = 0; r < std::size(ranges); ++r)
                             backend.uniform(t[r], PhiloxState{seed, offset}, ranges[r].first,
                                             ranges[r].second);
                         },
                         {{0, 0.0}, {1, 0.0}, {2, 0.0}}});
      }
      cases.push_back(bundle("random_uniform_seed_" + std::to_string(seed) + "_offset_" +
                                 offset_name(offset) + suffix(dtype),
                             parts));
    }
    std::vector<KernelCase> parts;
    for (const std::int64_t n : random_sizes) {
      parts.push_back({size_name(n),
                       [=](Device device) {
                         std::vector<Tensor> t;
                         for (std::size_t r = 0; r < std::size(normals); ++r)
                           t.push_back(Tensor::empty({n}, dtype, device));
                         return t;
                       },
                       [=](Backend& backend, const std::vector<Tensor>& t) {
                         for (std::size_t r = 0; r < std::size(normals); ++r)
                           backend.normal(t[r], PhiloxState{philox_seeds[1], offset},
                                          normals[r].first, normals[r].second);
                       },
                       normal_compared});
    }
    cases.push_back(bundle("random_normal_offset_" + offset_name(offset) + suffix(dtype), parts));
  }
  const Shape dropout_shapes[] = {{1}, {3, 17}, {5, 1}, {4, 37, 1000}, {100003}};
  for (const double p : {0.0, 0.1, 0.5, 0.9}) {
    for (const std::uint64_t offset : philox_offsets) {
      std::vector<KernelCase> parts;
      for (const Shape& shape : dropout_shapes) {
        parts.push_back(dropout_case(
            shape_name(shape),
            [=] { return std::vector<Tensor>{dropout_input(shape, dtype, 110)}; }, p,
            PhiloxState{dropout_state.seed, offset}));
      }
      cases.push_back(bundle("random_dropout_p" + std::to_string(int(p * 10)) + "_offset_" +
                                 offset_name(offset) + suffix(dtype),
                             parts));
    }
  }
  // The threshold is p itself, not float(p): u + 2^-26 rounds to u in f32,
  // and the element whose uniform is u must be dropped.
  {
    const PhiloxState s = dropout_state;
    std::int64_t e = 0;
    while (uniform_f32(philox_word(s.seed, s.offset + std::uint64_t(e))) < 0.5f) ++e;
    const double p = uniform_f32(philox_word(s.seed, s.offset + std::uint64_t(e))) + 0x1p-26;
    cases.push_back(dropout_case(
        "random_dropout_threshold_is_the_exact_probability" + suffix(dtype),
        [=] { return std::vector<Tensor>{Tensor::ones({e + 1}, dtype)}; }, p, s));
  }
  // Chunks of query rows [G, C, Lk] of a [G, Lq, Lk] matrix, addressed as rows
  // first_row.. of blocks of Lq rows. Lk = 129 puts row starts at every
  // position in a Philox block.
  const std::int64_t groups = 3, queries = 37, keys = 129;
  for (const auto& [first, chunk] :
       {std::pair<std::int64_t, std::int64_t>{0, 5}, {5, 5}, {35, 2}, {1, 36}, {0, 37}}) {
    const kernels::DropoutAddressing addressing = chunk_addressing(first, chunk, queries, keys);
    cases.push_back(dropout_case(
        "random_dropout_chunk_rows_" + std::to_string(first) + "_to_" +
            std::to_string(first + chunk) + suffix(dtype),
        [=] {
          return std::vector<Tensor>{dropout_input({groups, queries, keys}, dtype, 114)
                                         .narrow(1, first, chunk)
                                         .contiguous()};
        },
        0.4, dropout_state, addressing));
  }
  // Sparse rows [R, k] whose entry j is key columns[r, j] of a dense [R, Lk]
  // row, with i32 and i64 columns (row_words = Lk).
  for (const DType index_dtype : {DType::i32, DType::i64}) {
    kernels::DropoutAddressing addressing;
    addressing.row_words = 301;
    cases.push_back(dropout_case(
        "random_dropout_columns" + suffix(index_dtype) + suffix(dtype),
        [=] {
          const Tensor dense = dropout_input({50, 301}, dtype, 115);
          const PickedColumns picked = pick_columns(dense, dense, 7, 53, 97);
          return std::vector<Tensor>{tensor_of({50, 7}, picked.inputs, dtype),
                                     tensor_of({50, 7}, picked.columns, index_dtype)};
        },
        0.3, dropout_state, addressing));
  }
}

// ---- rows ----

// A copy on `device` whose data starts one element past a 16-byte boundary:
// the kernels' scalar path at widths the 16-byte path would otherwise take.
Tensor misaligned(const Tensor& t, Device device) {
  const Tensor base = Tensor::empty({t.numel() + 1}, t.dtype(), device);
  Tensor view = base.narrow(0, 1, t.numel()).view(t.shape());
  view.copy_(t);
  return view;
}

// Moves tensors made on the CPU to `device`, optionally misaligned.
std::vector<Tensor> moved(std::vector<Tensor> tensors, Device device, bool misalign = false) {
  for (Tensor& t : tensors) t = misalign ? misaligned(t, device) : t.to(device);
  return tensors;
}

struct RowsCase {
  std::int64_t groups, m, picked, width;  // G, M, N, D
  bool collide;                           // every index one of 3 rows
  std::string name(DType index_dtype) const {
    return "G" + std::to_string(groups) + "_M" + std::to_string(m) + "_N" + std::to_string(picked) +
           "_D" + std::to_string(width) + (collide ? "_colliding" : "") + suffix(index_dtype);
  }
};

// Widths that are and are not multiples of the 16-byte pack, G > 1, N = 0.
const RowsCase rows_cases[] = {
    {1, 1, 1, 1, false},       {2, 5, 7, 3, false},       {3, 40, 200, 64, false},
    {2, 33, 5000, 17, false},  {1, 900, 300, 768, false}, {3, 9, 4000, 70, true},
    {2, 1000, 3000, 64, true}, {2, 50, 0, 8, false},      {2, 5, 6, 0, false}};

// Normal values with inf, -inf and NaN in a few places.
Tensor with_specials(const Shape& shape, DType dtype, std::uint64_t seed) {
  const Tensor t = random_normal(shape, dtype, seed);
  std::vector<double> values = read_values(t);
  for (std::size_t i = 0; i < values.size(); i += 97) {
    values[i] = (i / 97) % 3 == 0   ? infinity
                : (i / 97) % 3 == 1 ? -infinity
                                    : std::numeric_limits<double>::quiet_NaN();
  }
  write_values(t, values);
  return t;
}

// gather_rows copies and scatter_add_rows adds every row's entries in the
// CPU's order (ascending n) with one rounding each: both equal the CPU's bit
// for bit. Operands: table, index, rows.
void add_rows_cases(std::vector<KernelCase>& cases, DType dtype) {
  const auto add = [&](const RowsCase& c, DType index_dtype, bool misalign) {
    const std::string where = misalign ? "_misaligned" : "";
    const Shape table_shape{c.groups, c.m, c.width}, rows_shape{c.groups, c.picked, c.width};
    const auto index = [=] {
      return tensor_of({c.groups, c.picked},
                       random_index_values({c.groups, c.picked}, c.m, c.collide, 11), index_dtype);
    };
    cases.push_back(
        {"rows_gather_" + c.name(index_dtype) + where + suffix(dtype),
         [=](Device device) {
           std::vector<Tensor> t = moved({with_specials(table_shape, dtype, 10)}, device, misalign);
           t.push_back(misalign ? misaligned(index(), device) : index().to(device));
           // Garbage in the output: the kernel must overwrite it.
           t.push_back(moved({Tensor::full(rows_shape, 7.0, dtype)}, device, misalign)[0]);
           return t;
         },
         [](Backend& backend, const std::vector<Tensor>& t) {
           backend.gather_rows(t[0], t[1], t[2]);
         },
         {{2, 0.0}}});
    cases.push_back(
        {"rows_scatter_add_" + c.name(index_dtype) + where + suffix(dtype),
         [=](Device device) {
           std::vector<Tensor> t = moved({random_normal(table_shape, dtype, 20)}, device, misalign);
           t.push_back(index().to(device));
           t.push_back(moved({with_specials(rows_shape, dtype, 21)}, device, misalign)[0]);
           return t;
         },
         [](Backend& backend, const std::vector<Tensor>& t) {
           backend.scatter_add_rows(t[0], t[1], t[2]);
         },
         {{0, 0.0}}});
  };
  for (const DType index_dtype : {DType::i32, DType::i64}) {
    for (const RowsCase& c : rows_cases) add(c, index_dtype, false);
    add({2, 30, 500, 64, false}, index_dtype, true);
  }
}

// ---- sparse ----

// k past one warp's 32 entries (37, 64, 512), the shapes of top-k attention
// (D = 64) and of the top-k feed-forward layer (k = 512, D = 768), widths
// that are and are not multiples of the 16-byte pack, R = 0 and k = 0.
const SparseCase sparse_cases[] = {
    {1, 1, 1, 1, 1, false},      {3, 5, 4, 3, 7, false},       {1, 9, 37, 4, 67, false},
    {2, 6, 3, 11, 5, false},     {2, 50, 64, 300, 64, false},  {1, 20, 512, 2000, 768, false},
    {1, 5000, 8, 50, 33, false}, {3, 300, 40, 3000, 70, true}, {2, 400, 64, 500, 64, true},
    {2, 0, 4, 5, 8, false},      {2, 3, 0, 5, 8, false}};

// The square root of the terms summed into one value (the typical size of a
// sum of that many N(0, 1) products), so that the relative tolerance bounds
// the error relative to the size of the terms rather than to a sum that
// happens to cancel.
double sparse_floor(std::int64_t terms) {
  return std::sqrt(static_cast<double>(std::max<std::int64_t>(terms, 1)));
}

// sparse_gather_sum and sparse_scatter_add add each row's terms in the CPU's
// order with one rounding each (an fma), which is the CPU's result bit for
// bit when the host compiler contracts `t += w * x` into an fma (GCC does
// for x86-64-v3); they are compared within the dtype's tolerance so that a
// compiler that does not contract still passes. sparse_gather_dot sums by a
// tree, not in sequence. Operands: weights, index, table, dense rows, then
// the output (gather_sum: [G, R, D], gather_dot: [G, R, k], 7s that must be
// overwritten); scatter_add writes the table.
void add_sparse_cases(std::vector<KernelCase>& cases, DType dtype) {
  const auto add = [&](const SparseCase& c, DType index_dtype, std::uint64_t seed, bool misalign) {
    const std::string name = c.name(index_dtype) + (misalign ? "_misaligned" : "") + suffix(dtype);
    // The table (and the dense rows and outputs) misaligned, or none.
    const auto operands = [=](Device device, const Shape& out) {
      const SparseInputs s = sparse_inputs(c, dtype, index_dtype, seed);
      const std::vector<Tensor> in{s.weights, s.index, s.table, s.dense,
                                   Tensor::full(out, 7.0, dtype)};
      std::vector<Tensor> t = moved(in, device);
      if (misalign) {
        for (const std::size_t i : {2, 3, 4}) t[i] = misaligned(in[i], device);
      }
      return t;
    };
    cases.push_back({"sparse_gather_sum_" + name,
                     [=](Device device) {
                       return operands(device, {c.groups, c.rows, c.width});
                     },
                     [](Backend& backend, const std::vector<Tensor>& t) {
                       backend.sparse_gather_sum(t[0], t[1], t[2], t[4]);
                     },
                     {{4, tolerance(dtype), sparse_floor(c.k)}}});
    cases.push_back({"sparse_gather_dot_" + name,
                     [=](Device device) {
                       return operands(device, {c.groups, c.rows, c.k});
                     },
                     [](Backend& backend, const std::vector<Tensor>& t) {
                       backend.sparse_gather_dot(t[3], t[1], t[2], t[4]);
                     },
                     {{4, tolerance(dtype), sparse_floor(c.width)}}});
    cases.push_back({"sparse_scatter_add_" + name,
                     [=](Device device) { return operands(device, {0}); },
                     [](Backend& backend, const std::vector<Tensor>& t) {
                       backend.sparse_scatter_add(t[0], t[1], t[3], t[2]);
                     },
                     {{2, tolerance(dtype), sparse_floor(c.groups * c.rows * c.k)}}});
  };
  for (const DType index_dtype : {DType::i32, DType::i64}) {
    for (const SparseCase& c : sparse_cases) add(c, index_dtype, 100, false);
    add({2, 50, 40, 300, 64, false}, index_dtype, 400, true);
  }
}

// ---- cross_entropy ----

// Label smoothing 0 to 0.2, ignore_index outside and inside [0, C), rows of 1
// to 270000 classes (the warp- and block-per-row kernels).
const CrossEntropyCase cross_entropy_cases[] = {
    {1, 1, 0.0, -100},     {5, 17, 0.0, -100},    {9, 33, 0.1, -100},   {7, 5, 0.2, 2},
    {4, 1000, 0.1, -100},  {3, 1024, 0.0, -100},  {3, 1025, 0.1, -100}, {6, 5000, 0.0, 7},
    {3, 16384, 0.1, -100}, {2, 50000, 0.0, -100}, {4, 270000, 0.1, -1}};

std::string cross_entropy_name(const CrossEntropyCase& c, DType target_dtype, bool large) {
  return shape_name({c.rows, c.classes}) + "_smoothing_" +
         std::to_string(int(std::lround(c.smoothing * 10))) + "_ignore_" +
         (c.ignore_index < 0 ? "minus_" + std::to_string(-c.ignore_index)
                             : std::to_string(c.ignore_index)) +
         (large ? "_large" : "") + suffix(target_dtype);
}

// The CPU runs in f64 (reference_in_f64). For f32 the tolerance grows with
// the logits (normal, or up to +-80): exp(x - lse) carries a relative error
// of |x - lse| * 2^-24 from rounding its argument (up to 5e-6 where it does
// not underflow) and as much again from lse, which is stored in f32.
// Operands: logits, targets, losses, logsumexp, then the backward's dlogits
// for scales 0.25 and -3 (garbage: overwritten), each from the forward's
// logsumexp of its own device.
void add_cross_entropy_cases(std::vector<KernelCase>& cases, DType dtype) {
  const double scales[] = {0.25, -3.0};
  for (const DType target_dtype : {DType::i32, DType::i64}) {
    for (const CrossEntropyCase& c : cross_entropy_cases) {
      for (const bool large : {false, true}) {
        const double tol = dtype == DType::f64 ? 1e-12 : (large ? 3e-5 : 1e-5);
        const auto make = [=](Device device) {
          return std::vector<Tensor>{
              (large ? random_uniform({c.rows, c.classes}, dtype, 600, -80.0, 80.0)
                     : random_normal({c.rows, c.classes}, dtype, 600, 2.0))
                  .to(device),
              cross_entropy_targets(c, target_dtype).to(device),
              Tensor::empty({c.rows}, dtype, device),
              Tensor::empty({c.rows}, dtype, device),
              random_normal({c.rows, c.classes}, dtype, 601).to(device),
              random_normal({c.rows, c.classes}, dtype, 602).to(device)};
        };
        const auto forward = [=](Backend& backend, const std::vector<Tensor>& t) {
          backend.cross_entropy(t[0], t[1], c.ignore_index, c.smoothing, t[2], t[3]);
        };
        const std::string name = cross_entropy_name(c, target_dtype, large) + suffix(dtype);
        cases.push_back({"cross_entropy_" + name, make, forward, {{2, tol}, {3, tol}}, true});
        // scale * (p - q) is compared relative to p, down to the scale of a
        // probability of 1/C (p - q may cancel where p is near q).
        std::vector<Compared> compared;
        for (std::size_t s = 0; s < std::size(scales); ++s)
          compared.push_back({4 + s, tol, std::abs(scales[s]) / double(c.classes)});
        cases.push_back({"cross_entropy_backward_" + name, make,
                         [=](Backend& backend, const std::vector<Tensor>& t) {
                           forward(backend, t);
                           for (std::size_t s = 0; s < std::size(scales); ++s)
                             backend.cross_entropy_backward(t[0], t[1], t[3], c.ignore_index,
                                                            c.smoothing, scales[s], t[4 + s]);
                         },
                         compared, true});
      }
    }
  }
}

// ---- topk_rows ----

// The bit patterns of a floating tensor's values (on the CPU), widened to 64 bits.
std::vector<std::uint64_t> value_bits(const Tensor& t) {
  std::vector<std::uint64_t> bits;
  if (t.dtype() == DType::f32) {
    for (const float v : t.to_vector<float>()) bits.push_back(std::bit_cast<std::uint32_t>(v));
  } else {
    for (const double v : t.to_vector<double>()) bits.push_back(std::bit_cast<std::uint64_t>(v));
  }
  return bits;
}

// [rows, n] with values from `draw`, row r and column i.
template <typename Draw>
Tensor rows_of(std::int64_t rows, std::int64_t n, DType dtype, Draw draw) {
  std::vector<double> values(static_cast<std::size_t>(rows * n));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t i = 0; i < n; ++i) values[r * n + i] = draw(r, i);
  }
  return tensor_of({rows, n}, values, dtype);
}

// Values of {0, 1, 2, 3}: thousands of ties at the k-th value.
Tensor small_integers(const Shape& shape, DType dtype, std::uint64_t seed) {
  std::vector<double> values = read_values(random_uniform(shape, dtype, seed, 0.0, 4.0));
  for (double& v : values) v = std::floor(v);
  return tensor_of(shape, values, dtype);
}

// topk_rows of x (made on the CPU) for every k in ks and both index dtypes.
// Both devices order by the same strict total order (larger first, NaN above
// +inf, -0 equal to +0, ties to the lower index), and values are copies of
// elements: indices equal and values equal bit for bit. Operands: x, then
// values and indices for each k and index dtype.
KernelCase topk_rows_case(const std::string& name, DType dtype, std::function<Tensor()> x,
                          std::vector<std::int64_t> ks) {
  std::vector<Compared> compared;
  for (std::size_t o = 1; o < 1 + 4 * ks.size(); o += 2) {
    compared.push_back({o, 0.0, 1.0, true});
    compared.push_back({o + 1, 0.0});
  }
  return {"topk_rows_" + name + suffix(dtype),
          [=](Device device) {
            const Tensor input = x();
            std::vector<Tensor> t{input.to(device)};
            for (const std::int64_t k : ks) {
              Shape out_shape = input.shape();
              out_shape.back() = k;
              for (const DType index_dtype : {DType::i32, DType::i64}) {
                t.push_back(Tensor::empty(out_shape, input.dtype(), device));
                t.push_back(Tensor::empty(out_shape, index_dtype, device));
              }
            }
            return t;
          },
          [=](Backend& backend, const std::vector<Tensor>& t) {
            for (std::size_t o = 1; o < t.size(); o += 2)
              backend.topk_rows(t[0], t[o].shape().back(), t[o], t[o + 1]);
          },
          compared};
}

// k = 1, 7, 128, 1000, 1024 on rows of n = k (the whole-row sort), 5000 and
// 70000 (radix select), one row and 300 rows; rows full of ties, rows with
// -inf (a masked tail, or all of the row, as masked attention rows are),
// +inf, NaN, -0 next to +0, and denormals; k above 1024 (selection in
// rounds); rank-3 inputs.
void add_topk_rows_cases(std::vector<KernelCase>& cases, DType dtype) {
  const std::vector<std::int64_t> ks = {1, 7, 128, 1000, 1024};
  const auto add = [&](const std::string& name, std::function<Tensor()> x,
                       const std::vector<std::int64_t>& row_ks) {
    cases.push_back(topk_rows_case(name, dtype, std::move(x), row_ks));
  };
  for (const std::int64_t rows : {1, 300}) {
    for (const std::int64_t n : {5000, 70000}) {
      add(
          "random_" + shape_name({rows, n}),
          [=] {
            return random_normal({rows, n}, dtype, 300 + n + rows);
          },
          ks);
    }
    for (const std::int64_t k : ks) {
      add("random_n_equals_k_" + shape_name({rows, k}),
          [=] {
            return random_normal({rows, k}, dtype, 310 + k);
          },
          {k});
    }
    for (const std::int64_t n : {1024, 5000, 70000}) {
      add(
          "ties_" + shape_name({rows, n}),
          [=] {
            return small_integers({rows, n}, dtype, 330 + n);
          },
          ks);
    }
  }
  // Lengths around the switch from the whole-row sort (n <= 1024) to
  // selection, and rows shorter than a warp.
  for (const std::int64_t n : {1, 2, 17, 33, 513, 1023, 1024, 1025, 1537}) {
    std::vector<std::int64_t> row_ks = {1, (n + 1) / 2, n};
    row_ks.erase(std::unique(row_ks.begin(), row_ks.end()), row_ks.end());
    add(
        "lengths_" + shape_name({37, n}),
        [=] {
          return random_normal({37, n}, dtype, 320 + n);
        },
        row_ks);
  }
  // Masked attention rows: a visible prefix of scores (its length varying by
  // row, 0 for every fifth row) and -inf after it.
  for (const std::int64_t n : {1024, 5000, 70000}) {
    add(
        "masked_" + shape_name({300, n}),
        [=] {
          const std::vector<double> normal = read_values(random_normal({300, n}, dtype, 340 + n));
          return rows_of(300, n, dtype, [&](std::int64_t r, std::int64_t i) {
            const std::int64_t visible = r % 5 == 0 ? 0 : (r * 37) % n;
            return i < visible ? normal[r * n + i] : -infinity;
          });
        },
        ks);
    add(
        "all_minus_inf_" + shape_name({1, n}),
        [=] { return rows_of(1, n, dtype, [](std::int64_t, std::int64_t) { return -infinity; }); },
        ks);
  }
  // NaN, +inf, -inf, -0, +0 and a few finite values, mixed: NaNs lead (lower
  // index first), then +inf; -0 and +0 tie.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const std::int64_t n : {9, 1000, 5000, 70000}) {
    std::vector<std::int64_t> row_ks;
    for (const std::int64_t k : ks) {
      if (k <= n) row_ks.push_back(k);
    }
    add(
        "specials_" + shape_name({300, n}),
        [=] {
          const double specials[] = {nan, infinity, -infinity, 0.0, -0.0, -nan, 1.5, -1.5, 0.5};
          const std::vector<double> picks =
              read_values(random_uniform({300, n}, DType::f64, 350 + n, 0.0, 9.0));
          return rows_of(300, n, dtype, [&](std::int64_t r, std::int64_t i) {
            return specials[static_cast<int>(picks[r * n + i])];
          });
        },
        row_ks);
    // A few NaNs among normal values, and rows of zeros of both signs.
    const std::vector<std::int64_t> few_ks = {1, std::min<std::int64_t>(n, 128)};
    add(
        "sparse_nan_" + shape_name({3, n}),
        [=] {
          const std::vector<double> normal = read_values(random_normal({3, n}, dtype, 360 + n));
          return rows_of(3, n, dtype, [&](std::int64_t r, std::int64_t i) {
            return i % 997 == 13 ? nan : normal[r * n + i];
          });
        },
        few_ks);
    add(
        "signed_zeros_" + shape_name({3, n}),
        [=] {
          return rows_of(3, n, dtype,
                         [](std::int64_t, std::int64_t i) { return i % 3 ? -0.0 : 0.0; });
        },
        few_ks);
  }
  // Denormals of both signs and the extremes of the finite range.
  const bool f32 = dtype == DType::f32;
  const double tiny =
      f32 ? std::numeric_limits<float>::denorm_min() : std::numeric_limits<double>::denorm_min();
  const double huge = f32 ? std::numeric_limits<float>::max() : std::numeric_limits<double>::max();
  for (const std::int64_t n : {800, 5000}) {
    add("extremes_" + shape_name({20, n}),
        [=] {
          const double values[] = {tiny, -tiny, 3 * tiny, -3 * tiny, huge, -huge, 0.0, -0.0};
          return rows_of(20, n, dtype,
                         [&](std::int64_t r, std::int64_t i) { return values[(i * 5 + r) % 8]; });
        },
        {1, 7, 500});
  }
  // Ascending rows make every element displace the CPU's current best;
  // constant rows are one long tie.
  const std::int64_t n = 70000;
  add(
      "ascending_and_descending_" + shape_name({2, n}),
      [=] {
        return rows_of(2, n, dtype, [n](std::int64_t r, std::int64_t i) {
          return r == 0 ? double(i) : double(n - i);
        });
      },
      ks);
  add(
      "constant_" + shape_name({2, n}),
      [=] { return rows_of(2, n, dtype, [](std::int64_t, std::int64_t) { return 0.5; }); }, ks);
  // k beyond one sort of 1024 winners: selection in rounds.
  const std::vector<std::int64_t> large_ks = {1025, 2048, 3000, 4999, 5000};
  add(
      "k_above_1024_random_30x5000",
      [=] {
        return random_normal({30, 5000}, dtype, 370);
      },
      large_ks);
  add(
      "k_above_1024_ties_30x5000",
      [=] {
        return small_integers({30, 5000}, dtype, 371);
      },
      large_ks);
  add("k_above_1024_long_rows_2x70000",
      [=] {
        return random_normal({2, 70000}, dtype, 372);
      },
      {4096});
  add("rank_3_3x4x2000", [=] { return random_normal({3, 4, 2000}, dtype, 380); }, {1, 7, 128});
  add("rank_3_3x4x50", [=] { return random_normal({3, 4, 50}, dtype, 381); }, {7});
}

// ---- topk_scores ----

struct TopKScoresRows {
  TopKScoresCase c;
  std::vector<std::int64_t> ks;
};

// Sizes leave partial query tiles and key blocks (Lq = 77, Lk = 300; Lq = Lk
// = 1000), with causal masks (offset 0 and Lk - Lq), padding (i32/i64
// lengths, 2 batch items of 3 groups), k = 1, 32, 128, Lk and more than short
// rows see, head dims 16, 64 and 100, and sizes whose shared memory no GPU
// has (head dim 512, k = 1024) for the CUDA backend's dense path.
const TopKScoresRows topk_scores_cases[] = {
    {{"partial_tiles_d16", 2, 77, 300, 16}, {1, 32, 128}},
    {{"partial_tiles_d64", 2, 77, 300, 64}, {1, 32, 128, 300}},
    {{"partial_tiles_d100", 2, 77, 300, 100}, {1, 32, 128}},
    // Every row sees at most 77 keys: k = 128 leaves -inf slots everywhere.
    {{"causal", 2, 77, 300, 64, true, 0}, {1, 32, 128}},
    {{"causal_offset_kv_cache", 2, 77, 300, 64, true, 223}, {1, 32, 128}},
    {{"lengths_i32", 6, 77, 300, 64, false, 0, {300, 45}, DType::i32}, {1, 32, 128}},
    {{"causal_and_lengths_i64", 6, 77, 300, 16, true, 223, {0, 170}, DType::i64}, {1, 32, 128}},
    {{"long", 2, 1000, 1000, 64}, {32, 128}},
    {{"long_causal_lengths", 6, 1000, 1000, 64, true, 0, {1000, 613}, DType::i64}, {128}},
    {{"dense_path_d512", 2, 77, 300, 512, true, 223}, {1, 32}},
    {{"dense_path_k1024", 2, 40, 1100, 16, true, 1060, {1100, 1070}, DType::i32}, {1024}},
};

// Operands: q, keys, the key lengths (undefined without; on the device, where
// top-k attention keeps them, or on the host), values, indices. Scores are
// summed in different orders on each device, so near-ties may swap: both
// results are checked against exact scores and against each other up to such
// swaps (topk_scores_reference.h), and bit for bit where the inputs make
// every score exact (small integers). The CPU takes 64 query rows per chunk,
// any other backend 16.
KernelCase topk_scores_case(const TopKScoresCase& c, std::int64_t k, ScoreInputs kind,
                            std::uint64_t seed, bool lengths_on_host, DType dtype) {
  const char* kind_name = kind == ScoreInputs::normal      ? ""
                          : kind == ScoreInputs::ascending ? "_ascending"
                                                           : "_integers";
  const auto inputs = [=] { return topk_scores_inputs(c, dtype, kind, seed); };
  KernelCase row{"topk_scores_" + c.name + "_k" + std::to_string(k) + kind_name +
                     (lengths_on_host ? "_lengths_on_host" : "") + suffix(dtype),
                 [=](Device device) {
                   const TopKScoresInputs in = inputs();
                   const Tensor lengths = topk_scores_mask(c).key_lengths;
                   const Shape shape{c.groups, c.queries, k};
                   return std::vector<Tensor>{
                       in.q.to(device), in.keys.to(device),
                       lengths.defined() && !lengths_on_host ? lengths.to(device) : lengths,
                       Tensor::empty(shape, dtype, device),
                       Tensor::empty(shape, DType::i32, device)};
                 },
                 [=](Backend& backend, const std::vector<Tensor>& t) {
                   kernels::RowMask mask = topk_scores_mask(c);
                   mask.key_lengths = t[2];
                   const double scale = inputs().scale;
                   backend.topk_scores(t[0], t[1], scale, mask, k, t[0].device().is_cpu() ? 64 : 16,
                                       t[3], t[4]);
                 },
                 {}};
  row.check = [=, name = row.name](const std::vector<Tensor>& got,
                                   const std::vector<Tensor>& want) {
    const TopKScoresChecker check(c, inputs(), k);
    const TopKScoresResult device_result{read_values(got[3]), read_indices(got[4])};
    const TopKScoresResult cpu_result{read_values(want[3]), read_indices(want[4])};
    check.expect_valid(device_result, name + " (device)");
    if (kind == ScoreInputs::small_integers) {
      check.expect_identical(device_result, cpu_result, name);
    } else {
      check.expect_valid(cpu_result, name + " (CPU)");
      check.expect_same(device_result, cpu_result, name);
    }
  };
  return row;
}

void add_topk_scores_cases(std::vector<KernelCase>& cases, DType dtype) {
  for (const TopKScoresRows& r : topk_scores_cases) {
    for (const std::int64_t k : r.ks) {
      cases.push_back(topk_scores_case(r.c, k, ScoreInputs::normal, 800, false, dtype));
      // Small integers: every score exact, full of ties (to the lower key).
      cases.push_back(topk_scores_case(r.c, k, ScoreInputs::small_integers, 801, false, dtype));
      // Scores that rise with the key: every key beats the running k-th
      // best, so candidate buffers fill every other key block and merge
      // over and over.
      if (r.c.keys >= 1000) {
        cases.push_back(topk_scores_case(r.c, k, ScoreInputs::ascending, 800, false, dtype));
      }
    }
  }
  // Key lengths may also come from the host (as the CPU reads them).
  cases.push_back(
      topk_scores_case(topk_scores_cases[6].c, 32, ScoreInputs::small_integers, 803, true, dtype));
}

// ---- linear_attention ----

// Lengths from 1 to 4100 (the GPU splits long groups into segments whose
// prefix states are summed separately), feature counts 1, 7, 256 and 600
// (more than one warp along m), value widths 1, 33, 64 and 130.
const LinearAttentionProblem linear_attention_problems[] = {
    {1, 1, 1, 1},      {5, 5, 7, 33},      {1, 5, 256, 1},   {5, 300, 7, 1},   {1, 300, 256, 64},
    {5, 300, 256, 33}, {2, 300, 600, 130}, {5, 4100, 1, 33}, {1, 4100, 7, 64}, {1, 4100, 256, 64},
};

// Forward and backward from Performer's features (uniform in [0.01, 1)) and
// N(0, 1) values and output gradients. Operands: phi_q, phi_k, v, d_out, then
// out, d_phi_q, d_phi_k, d_v (7s, which must be overwritten). Both devices
// compute every sum in double from the same inputs and round once to the
// dtype at the end. They add in different orders (the GPU by segments and
// fixed butterflies), which moves a result by about L * 1.1e-16 relative to
// the sum of its terms' magnitudes: under 5e-13 for L = 4100, and the results
// here (averages of values, gradients of them) are not much smaller than
// those sums. So f64 results agree to 1e-12, and f32 results, whatever L,
// differ by the final rounding only (at most one ulp, 1.2e-7 relative): 1e-6.
KernelCase linear_attention_case(const std::string& name, const LinearAttentionProblem& p,
                                 std::uint64_t seed, std::int64_t zero_prefix, DType dtype) {
  const double tol = dtype == DType::f64 ? 1e-12 : 1e-6;
  return {"linear_attention_" + name + suffix(dtype),
          [=](Device device) {
            const LinearAttentionInputs in =
                linear_attention_inputs(p, dtype, seed, 0.01, zero_prefix);
            return moved({in.phi_q, in.phi_k, in.v, random_normal(p.value_shape(), dtype, seed + 3),
                          Tensor::full(p.value_shape(), 7.0, dtype),
                          Tensor::full(p.feature_shape(), 7.0, dtype),
                          Tensor::full(p.feature_shape(), 7.0, dtype),
                          Tensor::full(p.value_shape(), 7.0, dtype)},
                         device);
          },
          [](Backend& backend, const std::vector<Tensor>& t) {
            backend.causal_linear_attention(t[0], t[1], t[2], t[4]);
            backend.causal_linear_attention_backward(t[0], t[1], t[2], t[3], t[5], t[6], t[7]);
          },
          {{4, tol}, {5, tol}, {6, tol}, {7, tol}}};
}

std::string problem_name(const LinearAttentionProblem& p) {
  return "G" + std::to_string(p.groups) + "_L" + std::to_string(p.length) + "_m" +
         std::to_string(p.features) + "_dv" + std::to_string(p.width);
}

void add_linear_attention_cases(std::vector<KernelCase>& cases, DType dtype) {
  std::uint64_t seed = 500;
  for (const LinearAttentionProblem& p : linear_attention_problems) {
    cases.push_back(linear_attention_case(problem_name(p), p, seed += 10, 0, dtype));
  }
  // The last group's first rows have phi_k = 0 (denominator 0): 3 of 5 rows,
  // and 1500 of 4100 (more than a segment, so whole segments start from and
  // add a zero state).
  for (const auto& [p, zero_prefix] :
       {std::pair<LinearAttentionProblem, std::int64_t>{{2, 5, 7, 33}, 3},
        {{2, 4100, 256, 64}, 1500},
        {{1, 300, 1, 1}, 299}}) {
    cases.push_back(
        linear_attention_case(problem_name(p) + "_zero_prefix_" + std::to_string(zero_prefix), p,
                              600, zero_prefix, dtype));
  }
  // No rows, no features or no values: nothing to compute, or zeros.
  for (const LinearAttentionProblem& p :
       {LinearAttentionProblem{0, 5, 3, 4}, {2, 0, 3, 4}, {2, 5, 0, 4}, {2, 5, 3, 0}}) {
    cases.push_back(linear_attention_case(problem_name(p), p, 800, 0, dtype));
  }
}

// ---- the table ----

std::vector<KernelCase> kernel_cases() {
  std::vector<KernelCase> cases;
  for (const DType dtype : {DType::f32, DType::f64}) {
    add_gemm_cases(cases, dtype);
    add_elementwise_map_cases(cases, dtype);
    add_reduce_cases(cases, dtype);
    add_softmax_cases(cases, dtype);
    add_layer_norm_cases(cases, dtype);
    add_rows_cases(cases, dtype);
    add_cross_entropy_cases(cases, dtype);
    add_random_cases(cases, dtype);
    add_topk_rows_cases(cases, dtype);
    add_topk_scores_cases(cases, dtype);
    add_sparse_cases(cases, dtype);
    add_optimizer_cases(cases, dtype);
    add_linear_attention_cases(cases, dtype);
  }
  add_elementwise_fill_cases(cases);
  return cases;
}

// The operands for the CPU's run: as made, or widened to f64.
std::vector<Tensor> reference_operands(const KernelCase& c) {
  std::vector<Tensor> operands = c.make(Device::cpu());
  if (c.reference_in_f64) {
    for (Tensor& t : operands) {
      if (t.defined() && is_floating(t.dtype())) t = t.to(DType::f64);
    }
  }
  return operands;
}

void expect_matches_cpu(const KernelCase& c, Device device) {
  std::vector<Tensor> want = reference_operands(c);
  c.call(cpu_kernels(), want);
  const std::vector<Tensor> got = c.make(device);
  c.call(kernels::backend(device), got);
  std::vector<Tensor> got_on_cpu;
  for (const Tensor& t : got) got_on_cpu.push_back(t.defined() ? t.to(Device::cpu()) : t);
  for (const Compared& compared : c.compared) {
    ASSERT_EQ(got[compared.operand].device(), device);
    const Tensor& result = got_on_cpu[compared.operand];
    const std::string what = c.name + " operand " + std::to_string(compared.operand);
    if (compared.same_bits) {
      EXPECT_EQ(value_bits(result), value_bits(want[compared.operand])) << what;
    } else {
      expect_all_close(read_values(result), read_values(want[compared.operand]), compared.tolerance,
                       compared.floor, what);
    }
  }
  if (c.check) c.check(got_on_cpu, want);
}

// Every case on the first GPU (the CUDA backend). The "Cuda" prefix puts it
// in --gtest_filter='Cuda*'.
class BackendParity : public ::testing::TestWithParam<KernelCase> {};

TEST_P(BackendParity, MatchesCpu) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "needs a GPU: " << cuda_unavailable_reason();
  expect_matches_cpu(GetParam(), Device::cuda(0));
}

#if TOPKFORMER_TESTS_WITH_CUDA
INSTANTIATE_TEST_SUITE_P(Cuda, BackendParity, ::testing::ValuesIn(kernel_cases()),
                         [](const auto& row) { return row.param.name; });
#else
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(BackendParity);
#endif

// The kernel families: the sections of backend.h, and the first word(s) of
// every row's name.
const std::string families[] = {
    "gemm",   "elementwise",   "reduce",          "softmax",   "layer_norm",
    "rows",   "cross_entropy", "random",          "topk_rows", "topk_scores",
    "sparse", "optimizer",     "linear_attention"};

bool in_family(const KernelCase& c, const std::string& family) {
  return c.name.starts_with(family + "_");
}

// Runs on every machine: every row names its family, compares something and
// has a name of its own.
TEST(BackendParityTable, EveryRowNamesItsFamilyComparesAndIsNamedUniquely) {
  std::vector<std::string> names;
  for (const KernelCase& c : kernel_cases()) {
    names.push_back(c.name);
    EXPECT_EQ(std::count_if(std::begin(families), std::end(families),
                            [&](const std::string& family) { return in_family(c, family); }),
              1)
        << c.name << " names no family of backend.h (or two)";
    EXPECT_TRUE(!c.compared.empty() || c.check) << c.name << " compares nothing";
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end())
      << "two cases named " << *std::adjacent_find(names.begin(), names.end());
}

// Runs on every machine, a test per family (ctest runs them in parallel):
// every row makes its operands and calls its kernel on the CPU without an
// error, so a GPU session spends no time on a broken row.
class BackendParityTableOnCpu : public ::testing::TestWithParam<std::string> {};

TEST_P(BackendParityTableOnCpu, EveryRowRuns) {
  std::size_t rows = 0;
  for (const KernelCase& c : kernel_cases()) {
    if (!in_family(c, GetParam())) continue;
    ++rows;
    std::vector<Tensor> operands = reference_operands(c);
    // Rows sized to reach a GPU code path (rows of 70,000 entries, 1,000
    // queries) are only built here: the GPU run calls them on both devices,
    // and calling them here would cost most of the suite's CPU time.
    double elements = 0.0;
    for (const Tensor& operand : operands)
      elements += operand.defined() ? double(operand.numel()) : 0.0;
    if (elements <= double(1 << 22)) {
      EXPECT_NO_THROW(c.call(cpu_kernels(), operands)) << c.name;
    }
    for (const Compared& compared : c.compared) {
      ASSERT_LT(compared.operand, operands.size()) << c.name;
    }
  }
  EXPECT_GT(rows, 0u) << "no rows for " << GetParam();
}

INSTANTIATE_TEST_SUITE_P(BackendParityTable, BackendParityTableOnCpu, ::testing::ValuesIn(families),
                         [](const auto& param) { return param.param; });

}  // namespace
}  // namespace topkformer::testing
