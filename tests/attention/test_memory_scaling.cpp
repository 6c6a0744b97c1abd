// Peak memory of one attention / feed-forward layer, forward + backward, on
// the CPU allocator's exact counter: the paper's memory claims (Figure 1 and
// the feed-forward figure) as deterministic tests.
#include <gtest/gtest.h>

#include <functional>
#include <map>

#include "module_helpers.h"
#include "topkformer/nn/feed_forward.h"
#include "topkformer/nn/multi_head_attention.h"

namespace topkformer {
namespace {

using testing::peak_of;

std::int64_t attention_peak(attention::AttentionKind kind, std::int64_t length) {
  attention::AttentionConfig config;
  config.kind = kind;
  config.chunk_size = 1024;
  config.k = 128;
  Generator init(3);
  nn::MultiHeadAttention layer(256, 4, config, init);
  Tensor x = Tensor::randn({1, length, 256}, init);
  x.set_requires_grad(true);
  std::vector<Tensor> leaves = layer.parameters();
  leaves.push_back(x);
  return peak_of([&] { return layer.forward(x, {}, {true, {}}); }, leaves);
}

TEST(MemoryScaling, AttentionChunkedAndTopKGrowLinearlyVanillaQuadratically) {
  using attention::AttentionKind;
  std::map<AttentionKind, std::map<std::int64_t, double>> peak;
  for (std::int64_t length : {1024, 2048, 4096, 8192}) {
    for (AttentionKind kind : {AttentionKind::chunked, AttentionKind::topk}) {
      peak[kind][length] = double(attention_peak(kind, length));
    }
    // Vanilla at 8K would hold several 1 GiB score matrices: 4K shows the trend.
    if (length <= 4096)
      peak[AttentionKind::vanilla][length] = double(attention_peak(AttentionKind::vanilla, length));
  }
  for (std::int64_t length : {1024, 2048, 4096}) {
    SCOPED_TRACE("L " + std::to_string(length) + " -> " + std::to_string(2 * length));
    EXPECT_LE(peak[AttentionKind::chunked][2 * length] / peak[AttentionKind::chunked][length], 2.3);
    EXPECT_LE(peak[AttentionKind::topk][2 * length] / peak[AttentionKind::topk][length], 2.3);
  }
  for (std::int64_t length : {1024, 2048}) {
    EXPECT_GE(peak[AttentionKind::vanilla][2 * length] / peak[AttentionKind::vanilla][length], 3.5);
  }
  EXPECT_LE(peak[AttentionKind::topk][8192], 0.5 * peak[AttentionKind::chunked][8192]);
  EXPECT_LT(peak[AttentionKind::chunked][4096], peak[AttentionKind::vanilla][4096]);
}

std::int64_t feed_forward_peak(nn::FeedForwardKind kind, std::int64_t d_ff) {
  nn::FeedForwardConfig config;
  config.kind = kind;
  config.chunk_size = 1024;
  config.k = 128;
  Generator init(4);
  nn::FeedForward layer(256, d_ff, config, init);
  // 4096 tokens: the per-token activations, not the weights, decide the peak.
  Tensor x = Tensor::randn({1, 4096, 256}, init);
  x.set_requires_grad(true);
  std::vector<Tensor> leaves = layer.parameters();
  leaves.push_back(x);
  return peak_of([&] { return layer.forward(x); }, leaves);
}

TEST(MemoryScaling, FeedForwardTopKNeedsLeastAsTheHiddenWidthGrows) {
  using nn::FeedForwardKind;
  std::map<FeedForwardKind, std::map<std::int64_t, double>> peak;
  for (std::int64_t d_ff : {2048, 4096, 8192, 16384}) {
    for (FeedForwardKind kind :
         {FeedForwardKind::dense, FeedForwardKind::chunked, FeedForwardKind::topk}) {
      peak[kind][d_ff] = double(feed_forward_peak(kind, d_ff));
    }
    SCOPED_TRACE("d_ff " + std::to_string(d_ff));
    EXPECT_LT(peak[FeedForwardKind::topk][d_ff], peak[FeedForwardKind::chunked][d_ff]);
    EXPECT_LT(peak[FeedForwardKind::chunked][d_ff], peak[FeedForwardKind::dense][d_ff]);
  }
  for (std::int64_t d_ff : {2048, 4096, 8192}) {
    EXPECT_LE(peak[FeedForwardKind::chunked][2 * d_ff] / peak[FeedForwardKind::chunked][d_ff], 2.3);
    EXPECT_LE(peak[FeedForwardKind::topk][2 * d_ff] / peak[FeedForwardKind::topk][d_ff], 2.3);
  }
  // At the widest layer the hidden activations dominate; top-k keeps a
  // [tokens, k] slice of them where chunking keeps [chunk, d_ff] several times.
  EXPECT_LE(peak[FeedForwardKind::topk][16384], 0.5 * peak[FeedForwardKind::chunked][16384]);
}

}  // namespace
}  // namespace topkformer
