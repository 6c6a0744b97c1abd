#include "topkformer/data/dataset.h"

#include <algorithm>

#include "topkformer/core/error.h"

namespace topkformer::data {

namespace {

void check_options(const TokenizeOptions& options, const char* dataset) {
  TKF_CHECK(options.max_length >= (options.prepend_cls ? 2 : 1), dataset,
            ": max_length must leave room for at least one text token, got ", options.max_length,
            options.prepend_cls ? " with CLS" : "");
}

void check_index(std::int64_t index, std::int64_t size, const char* what) {
  TKF_CHECK(index >= 0 && index < size, what, ": index ", index, " outside [0, ", size, ")");
}

}  // namespace

void TokenSequences::append(const Tokenizer& tokenizer, const std::string& text,
                            const TokenizeOptions& options) {
  if (options.prepend_cls) tokens_.push_back(tokenizer.cls_id());
  const TokenIds ids = tokenizer.encode(text);
  const std::int64_t room = options.max_length - (options.prepend_cls ? 1 : 0);
  const auto kept = static_cast<std::ptrdiff_t>(std::min<std::int64_t>(room, ids.size()));
  tokens_.insert(tokens_.end(), ids.begin(), ids.begin() + kept);
  offsets_.push_back(static_cast<std::int64_t>(tokens_.size()));
}

std::span<const std::int32_t> TokenSequences::operator[](std::int64_t index) const {
  check_index(index, size(), "TokenSequences");
  const auto begin = static_cast<std::size_t>(offsets_[index]);
  const auto end = static_cast<std::size_t>(offsets_[index + 1]);
  return std::span<const std::int32_t>(tokens_).subspan(begin, end - begin);
}

ClassificationDataset::ClassificationDataset(const std::vector<TextRecord>& records,
                                             const Tokenizer& tokenizer,
                                             const TokenizeOptions& options)
    : pad_id_(tokenizer.pad_id()) {
  check_options(options, "ClassificationDataset");
  labels_.reserve(records.size());
  for (const TextRecord& record : records) {
    tokens_.append(tokenizer, record.text, options);
    labels_.push_back(record.label);
  }
}

std::int64_t ClassificationDataset::label(std::int64_t index) const {
  check_index(index, size(), "ClassificationDataset::label");
  return labels_[static_cast<std::size_t>(index)];
}

PairDataset::PairDataset(const std::vector<TextPairRecord>& records, const Tokenizer& tokenizer,
                         const TokenizeOptions& options)
    : pad_id_(tokenizer.pad_id()) {
  check_options(options, "PairDataset");
  labels_.reserve(records.size());
  for (const TextPairRecord& record : records) {
    tokens1_.append(tokenizer, record.text1, options);
    tokens2_.append(tokenizer, record.text2, options);
    labels_.push_back(record.label);
  }
}

std::int64_t PairDataset::label(std::int64_t index) const {
  check_index(index, size(), "PairDataset::label");
  return labels_[static_cast<std::size_t>(index)];
}

}  // namespace topkformer::data
