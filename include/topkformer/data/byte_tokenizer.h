// Byte-level tokenizer for the LRA text (IMDb) and retrieval (AAN) tasks: every
// byte of the UTF-8 input is one token, so there is no vocabulary to build and
// no unknown input.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "topkformer/data/tokenizer.h"

namespace topkformer::data {

class ByteTokenizer final : public Tokenizer {
 public:
  // Ids 0..255 are the byte values; the special ids follow them.
  static constexpr std::int32_t pad = 256;
  static constexpr std::int32_t cls = 257;
  static constexpr std::int32_t eos = 258;
  static constexpr std::int64_t size = 259;

  // One id per byte; no special ids are added.
  TokenIds encode(std::string_view text) const override;
  // The bytes of ids 0..255; special ids are skipped; any other id throws.
  std::string decode(const TokenIds& ids) const override;
  std::int64_t vocab_size() const override { return size; }
  std::int32_t pad_id() const override { return pad; }
  std::int32_t cls_id() const override { return cls; }
  std::int32_t eos_id() const { return eos; }
  std::string fingerprint() const override { return "byte:259"; }
};

}  // namespace topkformer::data
