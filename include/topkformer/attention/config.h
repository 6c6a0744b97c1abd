// Which attention variant a layer uses, and its knobs (the `attention` config section).
#pragma once

#include <cstdint>
#include <string>

#include "topkformer/core/names.h"

namespace topkformer::attention {

enum class AttentionKind { vanilla, chunked, topk, performer, count };
inline constexpr auto attention_kind_names =
    std::to_array<std::string_view>({"vanilla", "chunked", "topk", "performer"});
static_assert(names_match<AttentionKind>(attention_kind_names));

inline AttentionKind parse_attention_kind(const std::string& name) {  // throws, listing the names
  return parse_enum<AttentionKind>(attention_kind_names, name, "attention.kind");
}
inline std::string attention_kind_name(AttentionKind kind) {
  return enum_name(attention_kind_names, kind);
}

struct AttentionConfig {
  AttentionKind kind = AttentionKind::vanilla;
  std::int64_t chunk_size = 1024;            // chunked, topk: queries per chunk
  std::int64_t k = 128;                      // topk: keys kept per query (clamped to Lk)
  std::int64_t num_features = 256;           // performer: random features
  std::int64_t feature_redraw_interval = 0;  // performer: redraw every N training calls; 0 never
  double dropout = 0.0;                      // on attention probabilities, while training
};

}  // namespace topkformer::attention
