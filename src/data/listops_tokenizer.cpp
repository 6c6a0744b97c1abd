#include "topkformer/data/listops_tokenizer.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "topkformer/core/error.h"

namespace topkformer::data {
namespace {

// Parentheses only mark the tree structure that the brackets already carry;
// LRA deletes them before splitting, and so does this tokenizer.
bool is_parenthesis(char c) {
  return c == '(' || c == ')';
}

// A token's id, or nothing when it is not a word of the vocabulary.
std::optional<std::int32_t> find_id(std::string_view token) {
  const auto first_word = ListOpsTokenizer::vocabulary.begin() + ListOpsTokenizer::cls + 1;
  const auto found = std::find(first_word, ListOpsTokenizer::vocabulary.end(), token);
  if (found == ListOpsTokenizer::vocabulary.end()) return std::nullopt;
  return static_cast<std::int32_t>(found - ListOpsTokenizer::vocabulary.begin());
}

// Calls visit(token) for each token of `text` in order until it returns false.
template <typename Visit>
void for_each_token(std::string_view text, Visit visit) {
  std::string token;
  for (std::size_t position = 0; position <= text.size(); ++position) {
    if (position == text.size() || std::isspace(static_cast<unsigned char>(text[position]))) {
      if (!token.empty() && !visit(token)) return;
      token.clear();
    } else if (!is_parenthesis(text[position])) {
      token.push_back(text[position]);
    }
  }
}

}  // namespace

TokenIds ListOpsTokenizer::encode(std::string_view text) const {
  TokenIds ids;
  for_each_token(text, [&](const std::string& token) {
    const std::optional<std::int32_t> id = find_id(token);
    TKF_CHECK(id.has_value(), "listops tokenizer: unknown token '", token, "'");
    ids.push_back(*id);
    return true;
  });
  return ids;
}

std::optional<std::string> ListOpsTokenizer::first_unknown_token(std::string_view text) {
  std::optional<std::string> unknown;
  for_each_token(text, [&](const std::string& token) {
    if (!find_id(token)) unknown = token;
    return !unknown;
  });
  return unknown;
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
