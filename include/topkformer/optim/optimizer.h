// Optimizers over named parameters (names as nn::Module gives them), with
// state that checkpoints save by name.
#pragma once

#include <string>
#include <vector>

#include "topkformer/kernels/backend.h"
#include "topkformer/nn/module.h"

namespace topkformer::optim {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // Updates every parameter that has a gradient, at `learning_rate`, with the
  // gradients multiplied by `grad_scale` in the fused update (the clip factor
  // of clip_factor: clipping costs no pass of its own).
  virtual void step(double learning_rate, double grad_scale = 1.0) = 0;
  // Tensors a checkpoint must save to resume exactly, by name
  // (e.g. `exp_avg.encoder.embedding.weight`), updated in place by step().
  virtual nn::NamedTensors state() const = 0;
  std::int64_t steps() const { return steps_; }
  void set_steps(std::int64_t steps) { steps_ = steps; }
  void zero_grad();

 protected:
  explicit Optimizer(nn::NamedTensors parameters);
  nn::NamedTensors parameters_;
  std::int64_t steps_ = 0;
};

// True when `name` matches one of the shell-style patterns (`*.bias`, `*norm*`).
bool matches_any(const std::string& name, const std::vector<std::string>& patterns);

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
  // Parameters whose names match get no weight decay (biases and norms, as is usual).
  std::vector<std::string> no_decay = {"*.bias", "*norm*"};
};

// Adam with bias correction and decoupled weight decay (Loshchilov & Hutter).
class AdamW final : public Optimizer {
 public:
  AdamW(nn::NamedTensors parameters, AdamWOptions options = {});
  void step(double learning_rate, double grad_scale = 1.0) override;
  nn::NamedTensors state() const override;

 private:
  AdamWOptions options_;
  std::vector<Tensor> first_moment_, second_moment_;
  std::vector<bool> decays_;
};

struct SgdOptions {
  double momentum = 0.9, weight_decay = 0.0;
  std::vector<std::string> no_decay = {"*.bias", "*norm*"};
};

// SGD with (heavy-ball) momentum.
class Sgd final : public Optimizer {
 public:
  Sgd(nn::NamedTensors parameters, SgdOptions options = {});
  void step(double learning_rate, double grad_scale = 1.0) override;
  nn::NamedTensors state() const override;

 private:
  SgdOptions options_;
  std::vector<Tensor> momentum_;
  std::vector<bool> decays_;
};

// The global L2 norm of the parameters' gradients (those that have one, all
// on one device), accumulated in f64 on that device (Backend::sum_squares):
// one scalar comes to the host, not the gradients.
double grad_norm(const std::vector<Tensor>& parameters);

// The factor that scales gradients of global norm `norm` to at most max_norm
// (max_norm / norm when max_norm > 0 and norm exceeds it, else 1), to pass
// to Optimizer::step as grad_scale. max_norm <= 0: no clipping.
double clip_factor(double norm, double max_norm);

}  // namespace topkformer::optim
