#include "topkformer/data/word_vocabulary.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <unordered_set>
#include <utility>

#include "topkformer/core/error.h"

namespace topkformer::data {
namespace {

bool is_space(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

// Calls `visit` with every whitespace-separated word of `text`.
template <typename Visit>
void for_each_word(std::string_view text, Visit visit) {
  std::size_t position = 0;
  while (position < text.size()) {
    while (position < text.size() && is_space(text[position])) ++position;
    std::size_t end = position;
    while (end < text.size() && !is_space(text[end])) ++end;
    if (end > position) visit(text.substr(position, end - position));
    position = end;
  }
}

}  // namespace

WordVocabulary::WordVocabulary(std::vector<Entry> entries) : entries_(std::move(entries)) {
  std::string tokens_in_order;
  for (std::size_t id = 0; id < entries_.size(); ++id) {
    tokens_in_order.append(entries_[id].token).push_back('\n');
    if (id != static_cast<std::size_t>(pad) && id != static_cast<std::size_t>(cls))
      ids_.emplace(entries_[id].token, static_cast<std::int32_t>(id));
  }
  fingerprint_ = "word-vocabulary:" + std::to_string(entries_.size()) + ":" +
                 std::to_string(std::hash<std::string>{}(tokens_in_order));
}

WordVocabulary WordVocabulary::build(const std::filesystem::path& text_file,
                                     std::int64_t min_count) {
  TKF_CHECK(min_count >= 1, "word vocabulary: min_count must be at least 1, got ", min_count);
  std::ifstream in(text_file);
  TKF_CHECK(in, "word vocabulary: cannot read '", text_file.string(), "'");

  std::unordered_map<std::string, std::int64_t, TransparentHash, std::equal_to<>> counts;
  std::int64_t lines = 0;
  std::string line;
  while (std::getline(in, line)) {
    ++lines;
    for_each_word(line, [&counts](std::string_view word) {
      const auto found = counts.find(word);
      if (found == counts.end()) {
        counts.emplace(word, 1);
      } else {
        ++found->second;
      }
    });
  }
  TKF_CHECK(!in.bad(), "word vocabulary: read error in '", text_file.string(), "'");

  std::vector<Entry> entries{{std::string(pad_token), 0},
                             {std::string(cls_token), 0},
                             {std::string(unk_token), 0},
                             {std::string(eos_token), lines}};
  std::vector<Entry> words;
  for (auto& [word, count] : counts) {
    if (word == eos_token) {
      entries[eos].count += count;
    } else if (word == unk_token || word == pad_token || word == cls_token || count < min_count) {
      entries[unk].count += count;
    } else {
      words.push_back({word, count});
    }
  }
  TKF_CHECK(!words.empty(), "word vocabulary: '", text_file.string(),
            "' has no word that occurs at least ", min_count, " times");
  std::sort(words.begin(), words.end(), [](const Entry& a, const Entry& b) {
    return a.count != b.count ? a.count > b.count : a.token < b.token;
  });
  entries.insert(entries.end(), std::make_move_iterator(words.begin()),
                 std::make_move_iterator(words.end()));
  return WordVocabulary(std::move(entries));
}

WordVocabulary WordVocabulary::load(const std::filesystem::path& path) {
  std::ifstream in(path);
  TKF_CHECK(in, "word vocabulary: cannot read '", path.string(), "'");
  const std::string_view expected_specials[] = {pad_token, cls_token, unk_token, eos_token};

  std::vector<Entry> entries;
  std::unordered_set<std::string> seen;
  std::string line;
  for (std::int64_t line_number = 1; std::getline(in, line); ++line_number) {
    const auto where = [&] { return path.string() + ":" + std::to_string(line_number); };
    const std::size_t tab = line.find('\t');
    TKF_CHECK(tab != std::string::npos, "word vocabulary: ", where(),
              ": expected 'token<TAB>count', got '", line, "'");
    std::string token = line.substr(0, tab);
    TKF_CHECK(!token.empty() && std::none_of(token.begin(), token.end(), is_space),
              "word vocabulary: ", where(), ": token '", token, "' is empty or has whitespace");
    std::int64_t count = -1;
    const char* count_end = line.data() + line.size();
    const auto [parsed_end, status] = std::from_chars(line.data() + tab + 1, count_end, count);
    TKF_CHECK(status == std::errc() && parsed_end == count_end && count >= 0,
              "word vocabulary: ", where(), ": count '", line.substr(tab + 1),
              "' is not a non-negative integer");
    if (entries.size() < std::size(expected_specials)) {
      TKF_CHECK(token == expected_specials[entries.size()], "word vocabulary: ", where(),
                ": expected the special token '", expected_specials[entries.size()], "', got '",
                token, "'");
    }
    TKF_CHECK(seen.insert(token).second, "word vocabulary: ", where(), ": token '", token,
              "' appears twice");
    entries.push_back({std::move(token), count});
  }
  TKF_CHECK(!in.bad(), "word vocabulary: read error in '", path.string(), "'");
  TKF_CHECK(entries.size() > std::size(expected_specials), "word vocabulary: '", path.string(),
            "' holds no words after the special tokens");
  return WordVocabulary(std::move(entries));
}

void WordVocabulary::save(const std::filesystem::path& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  TKF_CHECK(out, "word vocabulary: cannot write '", path.string(), "'");
  for (const Entry& entry : entries_) out << entry.token << '\t' << entry.count << '\n';
  out.close();
  TKF_CHECK(out, "word vocabulary: write error in '", path.string(), "'");
}

TokenIds WordVocabulary::encode(std::string_view text) const {
  TokenIds ids;
  for_each_word(text, [this, &ids](std::string_view word) { ids.push_back(id(word)); });
  return ids;
}

std::string WordVocabulary::decode(const TokenIds& ids) const {
  std::string text;
  bool line_start = true;
  for (const std::int32_t id : ids) {
    check_id(id);
    if (id == pad || id == cls) continue;
    if (id == eos) {
      text.push_back('\n');
      line_start = true;
      continue;
    }
    if (!line_start) text.push_back(' ');
    text.append(entries_[id].token);
    line_start = false;
  }
  return text;
}

std::int32_t WordVocabulary::id(std::string_view word) const {
  const auto found = ids_.find(word);
  return found == ids_.end() ? unk : found->second;
}

const std::string& WordVocabulary::token(std::int32_t id) const {
  check_id(id);
  return entries_[id].token;
}

std::int64_t WordVocabulary::count(std::int32_t id) const {
  check_id(id);
  return entries_[id].count;
}

void WordVocabulary::check_id(std::int32_t id) const {
  TKF_CHECK(id >= 0 && id < vocab_size(), "word vocabulary: id ", id,
            " is outside the vocabulary [0, ", vocab_size(), ")");
}

}  // namespace topkformer::data
