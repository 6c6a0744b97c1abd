// Tokenizer for LRA ListOps sources such as "( ( [MAX 2 ) 9 ) ] )". As in the LRA
// input pipeline, every '(' and ')' is removed and the rest is split at
// whitespace; what remains must be an operator, a closing bracket or a digit.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "topkformer/data/tokenizer.h"

namespace topkformer::data {

class ListOpsTokenizer final : public Tokenizer {
 public:
  // The whole vocabulary; a token's id is its index. Pad is 0 so that
  // zero-filled batches are padding, as in LRA.
  static constexpr std::array<std::string_view, 17> vocabulary{
      "<pad>", "<cls>", "[MIN", "[MAX", "[MED", "[SM", "]", "0", "1",
      "2",     "3",     "4",    "5",    "6",    "7",   "8", "9"};
  static constexpr std::int32_t pad = 0;
  static constexpr std::int32_t cls = 1;

  // Throws topkformer::Error naming the first token outside the vocabulary
  // (the special tokens "<pad>" and "<cls>" are not accepted as text).
  TokenIds encode(std::string_view text) const override;
  // The first token of `text` that encode() would refuse, or nothing: lets a
  // reader report a bad expression at its file and line (or skip it).
  static std::optional<std::string> first_unknown_token(std::string_view text);
  // Tokens joined by single spaces, without pad and cls; an id outside the
  // vocabulary throws.
  std::string decode(const TokenIds& ids) const override;
  std::int64_t vocab_size() const override { return vocabulary.size(); }
  std::int32_t pad_id() const override { return pad; }
  std::int32_t cls_id() const override { return cls; }
  std::string fingerprint() const override { return "listops:17"; }
};

}  // namespace topkformer::data
