#include "topkformer/attention/config.h"

#include "topkformer/attention/functional.h"
#include "topkformer/core/error.h"

namespace topkformer::attention {

AttentionKind parse_attention_kind(const std::string& name) {
  if (name == "vanilla") return AttentionKind::vanilla;
  if (name == "chunked") return AttentionKind::chunked;
  if (name == "topk") return AttentionKind::topk;
  if (name == "performer") return AttentionKind::performer;
  throw Error("attention.kind: expected one of vanilla|chunked|topk|performer, got '" + name + "'");
}

std::string attention_kind_name(AttentionKind kind) {
  switch (kind) {
    case AttentionKind::vanilla:
      return "vanilla";
    case AttentionKind::chunked:
      return "chunked";
    case AttentionKind::topk:
      return "topk";
    case AttentionKind::performer:
      return "performer";
  }
  return "?";
}

Tensor attend(const AttentionConfig& config, const Tensor& q, const Tensor& k, const Tensor& v,
              const AttentionContext& context, const Tensor& projection) {
  switch (config.kind) {
    case AttentionKind::vanilla:
      return vanilla_attention(q, k, v, context);
    case AttentionKind::chunked:
      return chunked_attention(q, k, v, context, config.chunk_size);
    case AttentionKind::topk:
      return topk_attention(q, k, v, context, config.k, config.chunk_size);
    case AttentionKind::performer:
      return performer_attention(q, k, v, context, projection);
  }
  throw Error("attend: unknown attention kind");
}

}  // namespace topkformer::attention
