// Fused cross-entropy forward and backward against loops in double, with label
// smoothing, ignored rows (ignore_index outside and inside [0, C)), i32 and
// i64 targets, and out-of-range targets that must throw.
#include <string>

#include "kernels/cross_entropy_reference.h"
#include "kernels/reference.h"

namespace topkformer::testing {
namespace {

const CrossEntropyCase cross_entropy_cases[] = {
    {1, 1, 0.0, -100}, {5, 17, 0.0, -100}, {9, 33, 0.1, -100}, {7, 5, 0.2, 2}};

struct Reference {
  std::vector<double> losses, logsumexp, dlogits;
  std::vector<bool> ignored;
};

Reference reference_cross_entropy(const CrossEntropyCase& c, const Tensor& logits,
                                  const Tensor& targets, double scale) {
  const std::vector<double> x = read_values(logits);
  const std::vector<std::int64_t> t = read_indices(targets);
  const std::int64_t n = c.classes;
  Reference ref;
  ref.dlogits.assign(x.size(), 0.0);
  for (std::int64_t r = 0; r < c.rows; ++r) {
    const double* row = x.data() + r * n;
    const double max_value = *std::max_element(row, row + n);
    double total = 0.0;
    for (std::int64_t k = 0; k < n; ++k) total += std::exp(row[k] - max_value);
    const double lse = max_value + std::log(total);
    ref.logsumexp.push_back(lse);
    ref.ignored.push_back(t[r] == c.ignore_index);
    if (ref.ignored.back()) {
      ref.losses.push_back(0.0);
      continue;
    }
    double loss = 0.0;
    for (std::int64_t k = 0; k < n; ++k) {
      const double q = (k == t[r] ? 1.0 - c.smoothing : 0.0) + c.smoothing / double(n);
      loss -= q * (row[k] - lse);
      ref.dlogits[r * n + k] = scale * (std::exp(row[k] - lse) - q);
    }
    ref.losses.push_back(loss);
  }
  return ref;
}

class CrossEntropyKernel : public FloatingKernelTest {};

TEST_P(CrossEntropyKernel, ForwardAndBackwardMatchReference) {
  const double scale = 0.25;
  for (const DType target_dtype : {DType::i32, DType::i64}) {
    for (const CrossEntropyCase& c : cross_entropy_cases) {
      const std::string what = cross_entropy_case_name(c, target_dtype);
      const Tensor logits = random_normal({c.rows, c.classes}, dtype(), 100, 2.0);
      const Tensor targets = cross_entropy_targets(c, target_dtype);
      const Reference ref = reference_cross_entropy(c, logits, targets, scale);

      const Tensor losses = Tensor::empty({c.rows}, dtype()),
                   lse = Tensor::empty({c.rows}, dtype());
      cpu_kernels().cross_entropy(logits, targets, c.ignore_index, c.smoothing, losses, lse);
      expect_all_close(losses, ref.losses, tol(), 1.0, what + " losses");
      // logsumexp is only promised for the rows the backward will use.
      const std::vector<double> got_lse = read_values(lse);
      for (std::int64_t r = 0; r < c.rows; ++r) {
        if (ref.ignored[r]) continue;
        EXPECT_NEAR(got_lse[r], ref.logsumexp[r], tol() * std::max(1.0, std::abs(ref.logsumexp[r])))
            << what << " row " << r;
      }

      const Tensor dlogits = random_normal({c.rows, c.classes}, dtype(), 101);  // overwritten
      cpu_kernels().cross_entropy_backward(logits, targets, lse, c.ignore_index, c.smoothing, scale,
                                           dlogits);
      expect_all_close(dlogits, ref.dlogits, tol(), 1.0, what + " dlogits");
    }
  }
}

TEST_P(CrossEntropyKernel, OutOfRangeTargetThrows) {
  const Tensor logits = random_normal({3, 4}, dtype(), 102);
  const Tensor losses = Tensor::empty({3}, dtype()), lse = Tensor::empty({3}, dtype());
  for (const DType target_dtype : {DType::i32, DType::i64}) {
    for (const double bad : {-1.0, 4.0, 1000.0}) {
      const Tensor targets = tensor_of({3}, {0, bad, -100}, target_dtype);
      EXPECT_THROW(cpu_kernels().cross_entropy(logits, targets, -100, 0.0, losses, lse), Error)
          << "target " << bad;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Floating, CrossEntropyKernel, floating_dtypes(), dtype_test_name);

}  // namespace
}  // namespace topkformer::testing
