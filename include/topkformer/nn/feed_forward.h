// The position-wise feed-forward layer, dense or as top-k attention over its
// hidden units (paper §2.1, Eq. 3).
#pragma once

#include <memory>
#include <string>

#include "topkformer/core/names.h"
#include "topkformer/nn/linear.h"

namespace topkformer::nn {

enum class FeedForwardKind { dense, chunked, topk, count };
inline constexpr auto feed_forward_kind_names =
    std::to_array<std::string_view>({"dense", "chunked", "topk"});
static_assert(names_match<FeedForwardKind>(feed_forward_kind_names));

inline FeedForwardKind parse_feed_forward_kind(const std::string& name) {
  return parse_enum<FeedForwardKind>(feed_forward_kind_names, name, "feedforward.kind");
}
inline std::string feed_forward_kind_name(FeedForwardKind kind) {
  return enum_name(feed_forward_kind_names, kind);
}

// Between the two projections; gelu is the exact (erf) form.
enum class Activation { relu, gelu, count };
inline constexpr auto activation_names = std::to_array<std::string_view>({"relu", "gelu"});
static_assert(names_match<Activation>(activation_names));

struct FeedForwardConfig {
  FeedForwardKind kind = FeedForwardKind::dense;
  std::int64_t chunk_size = 1024;  // chunked, topk: tokens per chunk
  std::int64_t k = 128;            // topk: hidden units kept per token (clamped to d_ff)
  Activation activation = Activation::relu;
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
