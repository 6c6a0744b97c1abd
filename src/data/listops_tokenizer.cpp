#include "topkformer/data/listops_tokenizer.h"

#include <algorithm>
#include <cctype>

#include "topkformer/core/error.h"

namespace topkformer::data {
namespace {

// Parentheses only mark the tree structure that the brackets already carry;
// LRA deletes them before splitting, and so does this tokenizer.
bool is_parenthesis(char c) {
  return c == '(' || c == ')';
}

std::int32_t id_of(std::string_view token) {
  const auto first_word = ListOpsTokenizer::vocabulary.begin() + ListOpsTokenizer::cls + 1;
  const auto found = std::find(first_word, ListOpsTokenizer::vocabulary.end(), token);
  TKF_CHECK(found != ListOpsTokenizer::vocabulary.end(), "listops tokenizer: unknown token '",
            token, "'");
  return static_cast<std::int32_t>(found - ListOpsTokenizer::vocabulary.begin());
}

}  // namespace

TokenIds ListOpsTokenizer::encode(std::string_view text) const {
  TokenIds ids;
  std::string token;
  for (std::size_t position = 0; position <= text.size(); ++position) {
    if (position == text.size() || std::isspace(static_cast<unsigned char>(text[position]))) {
      if (!token.empty()) ids.push_back(id_of(token));
      token.clear();
    } else if (!is_parenthesis(text[position])) {
      token.push_back(text[position]);
    }
  }
  return ids;
}

std::string ListOpsTokenizer::decode(const TokenIds& ids) const {
  std::string text;
  for (std::size_t position = 0; position < ids.size(); ++position) {
    const std::int32_t id = ids[position];
    TKF_CHECK(id >= 0 && id < vocab_size(), "listops tokenizer: id ", id, " at position ", position,
              " is outside the vocabulary [0, ", vocab_size(), ")");
    if (id == pad || id == cls) continue;
    if (!text.empty()) text.push_back(' ');
    text.append(vocabulary[id]);
  }
  return text;
}

}  // namespace topkformer::data
