// The position-wise feed-forward layer, dense or as top-k attention over its
// hidden units (paper §2.1, Eq. 3).
#pragma once

#include <memory>
#include <string>

#include "topkformer/attention/functional.h"
#include "topkformer/nn/linear.h"

namespace topkformer::nn {

enum class FeedForwardKind { dense, chunked, topk };
FeedForwardKind parse_feed_forward_kind(const std::string& name);  // dense|chunked|topk
std::string feed_forward_kind_name(FeedForwardKind kind);

struct FeedForwardConfig {
  FeedForwardKind kind = FeedForwardKind::dense;
  std::int64_t chunk_size = 1024;  // chunked, topk: tokens per chunk
  std::int64_t k = 128;            // topk: hidden units kept per token (clamped to d_ff)
  attention::Activation activation = attention::Activation::relu;
};

// fc2(act(fc1(x))) with fc1 [d_ff, d_model] and fc2 [d_model, d_ff]: the
// same parameters whatever the kind, so a model trained with one kind can
// be evaluated with another.
class FeedForward : public Module {
 public:
  FeedForward(std::int64_t d_model, std::int64_t d_ff, const FeedForwardConfig& config,
              Generator& init, DType dtype = DType::f32);
  Tensor forward(const Tensor& x);  // [..., d_model]
  void set_config(const FeedForwardConfig& config);
  const FeedForwardConfig& config() const { return config_; }

 private:
  Tensor dense_forward(const Tensor& rows) const;  // rows [N, d_model]

  FeedForwardConfig config_;
  std::shared_ptr<Linear> fc1_, fc2_;
};

}  // namespace topkformer::nn
