#include "topkformer/data/byte_tokenizer.h"

#include "topkformer/core/error.h"

namespace topkformer::data {

TokenIds ByteTokenizer::encode(std::string_view text) const {
  TokenIds ids;
  ids.reserve(text.size());
  for (const char byte : text) ids.push_back(static_cast<unsigned char>(byte));
  return ids;
}

std::string ByteTokenizer::decode(const TokenIds& ids) const {
  std::string text;
  text.reserve(ids.size());
  for (std::size_t position = 0; position < ids.size(); ++position) {
    const std::int32_t id = ids[position];
    TKF_CHECK(id >= 0 && id < size, "byte tokenizer: id ", id, " at position ", position,
              " is outside the vocabulary [0, ", size, ")");
    if (id < pad) text.push_back(static_cast<char>(static_cast<unsigned char>(id)));
  }
  return text;
}

}  // namespace topkformer::data
