#include "topkformer/autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "topkformer/autograd/tape.h"

namespace topkformer::autograd {

namespace {
// Storage position of logical (row-major) element `element` of a strided tensor.
std::int64_t storage_position(const Tensor& tensor, std::int64_t element) {
  std::int64_t position = tensor.offset();
  for (int d = tensor.dim() - 1; d >= 0; --d) {
    position += (element % tensor.size(d)) * tensor.stride(d);
    element /= tensor.size(d);
  }
  return position;
}

double weighted_sum(const Tensor& output, const std::vector<double>& weights) {
  const std::vector<double> values = output.to(DType::f64).to_vector<double>();
  double total = 0.0;
  for (std::size_t i = 0; i < values.size(); ++i) total += values[i] * weights[i];
  return total;
}
}  // namespace

std::string GradcheckReport::str() const {
  std::ostringstream out;
  out << (passed ? "passed" : "FAILED") << ": worst relative error " << max_relative_error;
  if (input >= 0) {
    out << " at input " << input << " element " << element << " (analytic " << analytic
        << ", numeric " << numeric << ")";
  }
  out << " over " << checked_elements << " elements";
  return out.str();
}

GradcheckReport gradcheck(const GradcheckFunction& fn, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options) {
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined() || !inputs[i].requires_grad()) continue;
    TKF_CHECK(inputs[i].dtype() == DType::f64 && inputs[i].device().is_cpu(), "gradcheck: input ",
              i, " must be an f64 CPU tensor, got ", dtype_name(inputs[i].dtype()), " on ",
              inputs[i].device().str());
    TKF_CHECK(inputs[i].is_leaf(), "gradcheck: input ", i, " must be a leaf tensor");
  }

  // Analytic gradients of sum(fn(x) * w).
  for (const Tensor& input : inputs) {
    if (input.defined() && input.requires_grad()) const_cast<Tensor&>(input).zero_grad();
  }
  const Tensor output = fn(inputs);
  TKF_CHECK(output.requires_grad(), "gradcheck: the function's output does not require grad");
  Generator generator(options.seed);
  const Tensor weights = Tensor::randn(output.shape(), generator, DType::f64);
  const std::vector<double> weight_values = weights.to_vector<double>();
  backward({output}, {weights.to(output.dtype())});

  // Numeric gradients, one element at a time.
  GradcheckReport report;
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& input = inputs[i];
    if (!input.defined() || !input.requires_grad()) continue;
    const Tensor analytic_grad = input.grad();
    const std::vector<double> analytic = analytic_grad.defined()
                                             ? analytic_grad.to_vector<double>()
                                             : std::vector<double>(input.numel(), 0.0);
    double* base = static_cast<double*>(input.storage()->data());
    for (std::int64_t e = 0; e < input.numel(); ++e) {
      double& value = base[storage_position(input, e)];
      const double original = value;
      value = original + options.step;
      const double plus = weighted_sum(fn(inputs), weight_values);
      value = original - options.step;
      const double minus = weighted_sum(fn(inputs), weight_values);
      value = original;
      const double numeric = (plus - minus) / (2.0 * options.step);
      const double error = std::abs(analytic[e] - numeric) / std::max(1.0, std::abs(numeric));
      ++report.checked_elements;
      if (error > report.max_relative_error || !std::isfinite(error)) {
        report.max_relative_error = std::isfinite(error) ? error : INFINITY;
        report.input = static_cast<int>(i);
        report.element = e;
        report.analytic = analytic[e];
        report.numeric = numeric;
      }
    }
  }
  report.passed = report.max_relative_error <= options.tolerance;
  return report;
}

}  // namespace topkformer::autograd
