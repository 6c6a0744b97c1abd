// Tokenized datasets held in memory: the token ids of every item, stored
// back to back, and its label.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "topkformer/data/tokenizer.h"
#include "topkformer/data/tsv_readers.h"

namespace topkformer::data {

struct TokenizeOptions {
  // The most tokens an item keeps, the CLS token included; longer texts are
  // cut at the end. This is the sequence length the model is built for.
  std::int64_t max_length = 1000;
  bool prepend_cls = false;  // for CLS pooling
};

// Token sequences stored contiguously with their offsets.
class TokenSequences {
 public:
  void append(const Tokenizer& tokenizer, const std::string& text, const TokenizeOptions& options);
  std::int64_t size() const { return static_cast<std::int64_t>(offsets_.size()) - 1; }
  std::span<const std::int32_t> operator[](std::int64_t index) const;

 private:
  std::vector<std::int32_t> tokens_;
  std::vector<std::int64_t> offsets_{0};
};

// One text and a label per item (LRA text: max_length 1000; ListOps: 2000).
class ClassificationDataset {
 public:
  ClassificationDataset(const std::vector<TextRecord>& records, const Tokenizer& tokenizer,
                        const TokenizeOptions& options = {});
  std::int64_t size() const { return static_cast<std::int64_t>(labels_.size()); }
  std::span<const std::int32_t> tokens(std::int64_t index) const { return tokens_[index]; }
  std::int64_t label(std::int64_t index) const;
  std::int32_t pad_id() const { return pad_id_; }

 private:
  TokenSequences tokens_;
  std::vector<std::int64_t> labels_;
  std::int32_t pad_id_;
};

// Two texts and a label per item (LRA AAN retrieval: max_length 4000 each).
class PairDataset {
 public:
  PairDataset(const std::vector<TextPairRecord>& records, const Tokenizer& tokenizer,
              const TokenizeOptions& options = {4000, false});
  std::int64_t size() const { return static_cast<std::int64_t>(labels_.size()); }
  std::span<const std::int32_t> tokens1(std::int64_t index) const { return tokens1_[index]; }
  std::span<const std::int32_t> tokens2(std::int64_t index) const { return tokens2_[index]; }
  std::int64_t label(std::int64_t index) const;
  std::int32_t pad_id() const { return pad_id_; }

 private:
  TokenSequences tokens1_, tokens2_;
  std::vector<std::int64_t> labels_;
  std::int32_t pad_id_;
};

}  // namespace topkformer::data
