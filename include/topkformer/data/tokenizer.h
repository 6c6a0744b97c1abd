// Tokenizers turn text into integer ids and back. Every tokenizer reserves a
// padding id (for batching) and a CLS id (prepended for CLS pooling).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace topkformer::data {

using TokenIds = std::vector<std::int32_t>;

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual TokenIds encode(std::string_view text) const = 0;
  virtual std::string decode(const TokenIds& ids) const = 0;
  virtual std::int64_t vocab_size() const = 0;
  virtual std::int32_t pad_id() const = 0;
  virtual std::int32_t cls_id() const = 0;
  // Identifies the tokenizer and its vocabulary (e.g. for cache keys).
  virtual std::string fingerprint() const = 0;
};

}  // namespace topkformer::data
