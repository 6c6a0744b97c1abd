// Word-level vocabulary for WikiText language modelling: tokens are the
// whitespace-separated words of the (already tokenized) text, ids are given by
// descending training count.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "topkformer/data/tokenizer.h"

namespace topkformer::data {

class WordVocabulary final : public Tokenizer {
 public:
  // The special entries hold the first ids. In text, "<unk>" and "<eos>" mean
  // these entries; "<pad>" and "<cls>" are unknown words, so no text can turn
  // into padding.
  static constexpr std::int32_t pad = 0;
  static constexpr std::int32_t cls = 1;
  static constexpr std::int32_t unk = 2;
  static constexpr std::int32_t eos = 3;
  static constexpr std::string_view pad_token = "<pad>";
  static constexpr std::string_view cls_token = "<cls>";
  static constexpr std::string_view unk_token = "<unk>";
  static constexpr std::string_view eos_token = "<eos>";

  // Counts the words of `text_file` (the train split) and one <eos> per line.
  // Words seen fewer than `min_count` times are left out and counted as <unk>.
  // After the special entries, ids go by descending count, ties by the words'
  // byte order, so the same file always gives the same ids.
  static WordVocabulary build(const std::filesystem::path& text_file, std::int64_t min_count = 1);
  // Reads what save() wrote: one "token<TAB>count" line per id, in id order.
  static WordVocabulary load(const std::filesystem::path& path);
  void save(const std::filesystem::path& path) const;

  // The ids of the whitespace-separated words of `text`, unknown words as
  // <unk>. No <eos> is added, line breaks included: the language-model corpus
  // (lm_corpus.h) appends one per line.
  TokenIds encode(std::string_view text) const override;
  // Words joined by single spaces, <eos> as a line break, pad and cls skipped.
  std::string decode(const TokenIds& ids) const override;
  std::int64_t vocab_size() const override { return static_cast<std::int64_t>(entries_.size()); }
  std::int32_t pad_id() const override { return pad; }
  std::int32_t cls_id() const override { return cls; }
  std::int32_t unk_id() const { return unk; }
  std::int32_t eos_id() const { return eos; }
  // "word-vocabulary:<size>:<hash of the tokens in id order>"; counts do not
  // change the encoding, so they are not part of it.
  std::string fingerprint() const override { return fingerprint_; }

  // The id of `word`, or unk_id() when it is not in the vocabulary.
  std::int32_t id(std::string_view word) const;
  const std::string& token(std::int32_t id) const;
  // How often the entry occurred in the text the vocabulary was built from.
  std::int64_t count(std::int32_t id) const;

 private:
  struct Entry {
    std::string token;
    std::int64_t count = 0;
  };
  struct TransparentHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const {
      return std::hash<std::string_view>{}(text);
    }
  };

  explicit WordVocabulary(std::vector<Entry> entries);
  void check_id(std::int32_t id) const;

  std::vector<Entry> entries_;
  std::unordered_map<std::string, std::int32_t, TransparentHash, std::equal_to<>> ids_;
  std::string fingerprint_;
};

}  // namespace topkformer::data
