#include "topkformer/optim/optimizer.h"

#include <fnmatch.h>

#include <cmath>

#include "topkformer/autograd/grad_mode.h"

namespace topkformer::optim {

namespace {
Tensor zeros_like(const Tensor& t) {
  return Tensor::zeros(t.shape(), t.dtype(), t.device());
}

std::vector<bool> decay_flags(const nn::NamedTensors& parameters,
                              const std::vector<std::string>& no_decay) {
  std::vector<bool> flags;
  for (const auto& [name, tensor] : parameters) flags.push_back(!matches_any(name, no_decay));
  return flags;
}

nn::NamedTensors named_state(const nn::NamedTensors& parameters, const std::string& prefix,
                             const std::vector<Tensor>& tensors) {
  nn::NamedTensors state;
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    state.emplace_back(prefix + "." + parameters[i].first, tensors[i]);
  }
  return state;
}
}  // namespace

bool matches_any(const std::string& name, const std::vector<std::string>& patterns) {
  for (const std::string& pattern : patterns) {
    if (fnmatch(pattern.c_str(), name.c_str(), 0) == 0) return true;
  }
  return false;
}

Optimizer::Optimizer(nn::NamedTensors parameters) : parameters_(std::move(parameters)) {
  for (const auto& [name, tensor] : parameters_) {
    TKF_CHECK(tensor.is_contiguous() && is_floating(tensor.dtype()), "optimizer: parameter ", name,
              " must be a contiguous f32/f64 tensor");
  }
}

void Optimizer::zero_grad() {
  for (auto& [name, tensor] : parameters_) tensor.zero_grad();
}

AdamW::AdamW(nn::NamedTensors parameters, AdamWOptions options)
    : Optimizer(std::move(parameters)), options_(std::move(options)) {
  for (const auto& [name, tensor] : parameters_) {
    first_moment_.push_back(zeros_like(tensor));
    second_moment_.push_back(zeros_like(tensor));
  }
  decays_ = decay_flags(parameters_, options_.no_decay);
}

void AdamW::step(double learning_rate, double grad_scale) {
  autograd::NoGradGuard no_grad;
  ++steps_;
  kernels::AdamWStep update;
  update.learning_rate = learning_rate;
  update.beta1 = options_.beta1;
  update.beta2 = options_.beta2;
  update.eps = options_.eps;
  update.bias_correction1 = 1.0 - std::pow(options_.beta1, double(steps_));
  update.bias_correction2 = 1.0 - std::pow(options_.beta2, double(steps_));
  update.grad_scale = grad_scale;
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    const Tensor& parameter = parameters_[i].second;
    const Tensor grad = parameter.grad();
    if (!grad.defined()) continue;
    update.weight_decay = decays_[i] ? options_.weight_decay : 0.0;
    kernels::backend(parameter.device())
        .adamw_update(parameter, grad.contiguous(), first_moment_[i], second_moment_[i], update);
  }
}

nn::NamedTensors AdamW::state() const {
  nn::NamedTensors state = named_state(parameters_, "exp_avg", first_moment_);
  for (auto& entry : named_state(parameters_, "exp_avg_sq", second_moment_)) state.push_back(entry);
  return state;
}

Sgd::Sgd(nn::NamedTensors parameters, SgdOptions options)
    : Optimizer(std::move(parameters)), options_(std::move(options)) {
  for (const auto& [name, tensor] : parameters_) momentum_.push_back(zeros_like(tensor));
  decays_ = decay_flags(parameters_, options_.no_decay);
}

void Sgd::step(double learning_rate, double grad_scale) {
  autograd::NoGradGuard no_grad;
  ++steps_;
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    const Tensor& parameter = parameters_[i].second;
    const Tensor grad = parameter.grad();
    if (!grad.defined()) continue;
    const kernels::SgdStep update{learning_rate, options_.momentum,
                                  decays_[i] ? options_.weight_decay : 0.0, grad_scale};
    kernels::backend(parameter.device())
        .sgd_update(parameter, grad.contiguous(), momentum_[i], update);
  }
}

nn::NamedTensors Sgd::state() const {
  return named_state(parameters_, "momentum", momentum_);
}

double grad_norm(const std::vector<Tensor>& parameters) {
  autograd::NoGradGuard no_grad;
  std::vector<Tensor> grads;
  for (const Tensor& parameter : parameters) {
    const Tensor grad = parameter.grad();
    if (grad.defined()) grads.push_back(grad.contiguous());
  }
  if (grads.empty()) return 0.0;
  // Each gradient's sum of squares into one f64 slot on the device, then the
  // slots' sum in order there: only the total crosses to the host.
  const Device device = grads.front().device();
  kernels::Backend& backend = kernels::backend(device);
  const auto count = static_cast<std::int64_t>(grads.size());
  const Tensor squares = Tensor::empty({count}, DType::f64, device);
  for (std::int64_t i = 0; i < count; ++i) {
    const Tensor& grad = grads[static_cast<std::size_t>(i)];
    TKF_CHECK(grad.device() == device, "grad_norm: gradients on ", device.str(), " and ",
              grad.device().str());
    backend.sum_squares(grad, squares.narrow(0, i, 1));
  }
  const Tensor total = Tensor::empty({1}, DType::f64, device);
  backend.sum_rows(squares.view({1, count}), total);
  return std::sqrt(total.item());
}

double clip_factor(double norm, double max_norm) {
  return max_norm > 0.0 && norm > max_norm ? max_norm / norm : 1.0;
}

}  // namespace topkformer::optim
