#include "topkformer/autograd/recompute.h"
#include "topkformer/ops.h"
#include "vanilla.h"

namespace topkformer::attention {

Tensor chunked_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                         const AttentionContext& context, std::int64_t chunk_size) {
  const AttentionShape shape = check_attention_inputs(q, k, v, context, "chunked_attention");
  TKF_CHECK(chunk_size >= 1, "chunked_attention: chunk_size must be >= 1, got ", chunk_size);
  std::vector<Tensor> outputs;
  for (std::int64_t first = 0; first < shape.queries; first += chunk_size) {
    // The last chunk may be smaller; chunks are never merged.
    const std::int64_t count = std::min(chunk_size, shape.queries - first);
    const std::int64_t keys = visible_keys(shape, context, first, count);
    const Tensor q_chunk = ops::narrow(q, 2, first, count);
    const Tensor k_seen = ops::narrow(k, 2, 0, keys);
    const Tensor v_seen = ops::narrow(v, 2, 0, keys);
    // Input recomputation: the chunk's scores and weights are not kept; the
    // backward pass recomputes them (the dropout mask replays from its words).
    outputs.push_back(autograd::recompute(
        [context, shape, first](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{
              dense_attention_chunk(in[0], in[1], in[2], context, shape, first)};
        },
        {q_chunk, k_seen, v_seen})[0]);
  }
  return outputs.size() == 1 ? outputs[0] : ops::concat(outputs, 2);
}

}  // namespace topkformer::attention
