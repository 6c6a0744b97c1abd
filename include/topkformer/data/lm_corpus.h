// The language-model corpus: a text file encoded once into a cache of token
// ids that later runs memory-map instead of tokenizing again, and the
// training blocks and evaluation segments cut from that stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "topkformer/data/tokenizer.h"

namespace topkformer::data {

// The token ids of a text file: every line's ids followed by an end-of-line id
// (<eos> for WikiText), read from a memory-mapped cache file.
class TokenCache {
 public:
  // Uses the cache file in `cache_dir` for `source` and this tokenizer when
  // its header records the same source (absolute path, size, modification
  // time), tokenizer fingerprint and `eos_id`; otherwise encodes `source`
  // line by line, writes the cache (to a temporary file renamed into place,
  // so a crash never leaves a partial cache) and maps that. Throws naming the
  // file when `source` cannot be read and when it holds no tokens, and naming
  // the cache file when a current cache holds an id outside the vocabulary.
  TokenCache(const std::filesystem::path& source, const Tokenizer& tokenizer, std::int32_t eos_id,
             const std::filesystem::path& cache_dir);
  TokenCache(TokenCache&&) noexcept = default;
  TokenCache& operator=(TokenCache&&) noexcept = default;
  TokenCache(const TokenCache&) = delete;
  TokenCache& operator=(const TokenCache&) = delete;

  std::size_t size() const { return ids_.size(); }
  std::uint32_t operator[](std::size_t index) const { return ids_[index]; }
  std::span<const std::uint32_t> ids() const { return ids_; }
  // The cache file: <source file name>.<hash of source path, tokenizer and
  // eos id>.ids in cache_dir, so each (source, tokenizer) pair has its own.
  const std::filesystem::path& path() const { return path_; }
  // Whether this object wrote the cache (false: it reused an existing one).
  bool built() const { return built_; }

 private:
  std::filesystem::path path_;
  std::shared_ptr<const void> mapping_;  // keeps ids_ mapped
  std::span<const std::uint32_t> ids_;
  bool built_ = false;
};

// One training or evaluation sequence: targets[i] is the token after inputs[i].
struct LmExample {
  std::span<const std::uint32_t> inputs;
  std::span<const std::uint32_t> targets;
};

// Training blocks of seq_len + 1 consecutive tokens (inputs: the first
// seq_len, targets: the last seq_len). Block i starts at token i * seq_len, so
// neighbours share one token and every token but the first is a target exactly
// once; a tail too short for a whole block is left out. A view: the ids must
// outlive it.
class LmBlocks {
 public:
  LmBlocks(std::span<const std::uint32_t> ids, std::int64_t seq_len);

  std::int64_t size() const { return count_; }
  std::int64_t seq_len() const { return seq_len_; }
  LmExample block(std::int64_t index) const;

 private:
  std::span<const std::uint32_t> ids_;
  std::int64_t seq_len_;
  std::int64_t count_;
};

// Non-overlapping evaluation segments of seq_len inputs that together predict
// every token after the first once (the last segment may be shorter). Views
// into `ids`.
std::vector<LmExample> lm_eval_segments(std::span<const std::uint32_t> ids, std::int64_t seq_len);

}  // namespace topkformer::data
