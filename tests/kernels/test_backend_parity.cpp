// Backend parity as one table (as ggml's test-backend-ops): each row is a
// kernel call on operands made from the same values on every device, run on
// every built backend besides the CPU and compared with the CPU's result. A
// new kernel gets parity by a row. GPU runs: --gtest_filter='Cuda*:Nccl*'.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "kernels/mask_reference.h"
#include "kernels/reduce_reference.h"
#include "kernels/reference.h"
#include "test_util.h"
#include "topkformer/core/device.h"

namespace topkformer::testing {
namespace {

using kernels::Backend;
using kernels::RowMask;

constexpr double infinity = std::numeric_limits<double>::infinity();

// An operand compared after the call: |device - cpu| <= tolerance *
// max(|cpu|, floor), infinities and NaNs exactly (tolerance 0: equal).
struct Compared {
  std::size_t operand;
  double tolerance;
  double floor = 1.0;
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
  for (const std::int64_t extent : shape)
    name += (name.empty() ? "" : "x") + std::to_string(extent);
  return name;
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

// ---- the table ----

std::vector<KernelCase> kernel_cases() {
  std::vector<KernelCase> cases;
  for (const DType dtype : {DType::f32, DType::f64}) {
    add_reduce_cases(cases, dtype);
    add_softmax_cases(cases, dtype);
    add_layer_norm_cases(cases, dtype);
    add_optimizer_cases(cases, dtype);
  }
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
  for (const Compared& compared : c.compared) {
    const Tensor& result = got[compared.operand];
    ASSERT_EQ(result.device(), device);
    expect_all_close(read_values(result.to(Device::cpu())), read_values(want[compared.operand]),
                     compared.tolerance, compared.floor,
                     c.name + " operand " + std::to_string(compared.operand));
  }
}

std::string case_name(const ::testing::TestParamInfo<KernelCase>& info) {
  return info.param.name;
}

// Every case on the first GPU (the CUDA backend). The "Cuda" prefix puts it
// in --gtest_filter='Cuda*'.
class BackendParity : public ::testing::TestWithParam<KernelCase> {};

TEST_P(BackendParity, MatchesCpu) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "needs a GPU: " << cuda_unavailable_reason();
  expect_matches_cpu(GetParam(), Device::cuda(0));
}

INSTANTIATE_TEST_SUITE_P(Cuda, BackendParity, ::testing::ValuesIn(kernel_cases()), case_name);

// Runs on every machine: every row makes its operands and calls its kernel on
// the CPU without an error, so a GPU session spends no time on a broken row.
TEST(BackendParityTable, EveryCaseRunsOnTheCpuAndNamesAreUnique) {
  std::vector<std::string> names;
  for (const KernelCase& c : kernel_cases()) {
    names.push_back(c.name);
    std::vector<Tensor> operands = reference_operands(c);
    EXPECT_NO_THROW(c.call(cpu_kernels(), operands)) << c.name;
    for (const Compared& compared : c.compared) {
      ASSERT_LT(compared.operand, operands.size()) << c.name;
    }
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end())
      << "two cases named " << *std::adjacent_find(names.begin(), names.end());
}

}  // namespace
}  // namespace topkformer::testing
