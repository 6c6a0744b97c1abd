// Tokenized datasets in compact arrays: every text's token ids back to back,
// where each starts, and a label per item; tokenized in memory, or read from a
// token cache file that later runs map instead. See Note [dataset cache].
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "topkformer/data/tokenizer.h"
#include "topkformer/data/tsv_readers.h"

// Note [dataset cache]
// read_token_table() tokenizes a TSV file once, streaming it (the reviews are
// never held as strings), into `<cache_dir>/<file name>.<hash>.items`, and
// later runs map that file (data/cache_file.h, Note [cache files]: the same
// naming, header, temporary file and checks as the language-model cache).
// The hash and header cover the source's path, size and modification time,
// the format, the tokenizer's fingerprint, max_length, prepend_cls and
// skip_bad_lines. The whole file is cached whatever subset a run keeps
// (TokenTable::keep copies it out), so runs with other data.max_*_examples
// share it.
// Payload: the ids (i32[count]), zeros to a multiple of 8 bytes, then the
// items (u64), the bad lines skipped (u64), the offsets (u64[items * texts +
// 1]) and the labels (i32[items]). Every id, offset and label is checked
// when a cache is mapped, and the ids' pages are dropped from the process as
// they are checked: it reads back only those of the items it uses.

namespace topkformer::data {

struct TokenizeOptions {
  // The most tokens an item keeps, the CLS token included; longer texts are
  // cut at the end. This is the sequence length the model is built for.
  std::int64_t max_length = 1000;
  bool prepend_cls = false;  // for CLS pooling
};

// The arrays of a TokenTable: text t of item i holds the ids in
// [offsets[k], offsets[k + 1]) with k = i * texts_per_item + t.
struct TokenArrays {
  std::int64_t texts_per_item = 1;
  std::span<const std::int32_t> ids;
  std::span<const std::uint64_t> offsets;  // items * texts_per_item + 1, from 0
  std::span<const std::int32_t> labels;    // one per item
};

// Items of one or two texts (pairs) and a label, viewing arrays that
// `storage` keeps alive (vectors, or a mapped cache); copies share them.
class TokenTable {
 public:
  TokenTable(TokenArrays arrays, std::shared_ptr<const void> storage);
  // Tokenizes in memory.
  static TokenTable encode(const std::vector<TextRecord>& records, const Tokenizer& tokenizer,
                           const TokenizeOptions& options);
  static TokenTable encode(const std::vector<TextPairRecord>& records, const Tokenizer& tokenizer,
                           const TokenizeOptions& options);

  std::int64_t size() const;
  std::int64_t texts_per_item() const { return arrays_.texts_per_item; }
  std::span<const std::int32_t> tokens(std::int64_t index, std::int64_t text = 0) const;
  std::int64_t label(std::int64_t index) const;
  // Keeps only the items at `indices`, in that order, copied into arrays of
  // their own: a subset of a mapped cache then holds none of its pages.
  void keep(const std::vector<std::int64_t>& indices);

 private:
  TokenArrays arrays_;
  std::shared_ptr<const void> storage_;
};

// The items of a TSV file through its token cache in `cache_dir`, built when
// missing or stale (Note [dataset cache]). Errors name the file: bad lines
// as the readers do (`file:line`, or skipped with skip_bad_lines), and a
// current cache with damaged contents.
struct CachedTokenTable {
  TokenTable table;
  std::filesystem::path path;  // the cache file
  bool built = false;          // written by this call (false: reused)
};
CachedTokenTable read_token_table(const std::filesystem::path& source, TsvFormat format,
                                  const Tokenizer& tokenizer, const TokenizeOptions& options,
                                  const ReadOptions& read_options,
                                  const std::filesystem::path& cache_dir);

// One text and a label per item (LRA text: max_length 1000; ListOps: 2000).
class ClassificationDataset {
 public:
  ClassificationDataset(const std::vector<TextRecord>& records, const Tokenizer& tokenizer,
                        const TokenizeOptions& options = {});
  ClassificationDataset(TokenTable table, std::int32_t pad_id);  // one text per item
  std::int64_t size() const { return table_.size(); }
  std::span<const std::int32_t> tokens(std::int64_t index) const { return table_.tokens(index); }
  std::int64_t label(std::int64_t index) const { return table_.label(index); }
  std::int32_t pad_id() const { return pad_id_; }

 private:
  TokenTable table_;
  std::int32_t pad_id_;
};

// Two texts and a label per item (LRA AAN retrieval: max_length 4000 each).
class PairDataset {
 public:
  PairDataset(const std::vector<TextPairRecord>& records, const Tokenizer& tokenizer,
              const TokenizeOptions& options = {4000, false});
  PairDataset(TokenTable table, std::int32_t pad_id);  // two texts per item
  std::int64_t size() const { return table_.size(); }
  std::span<const std::int32_t> tokens1(std::int64_t index) const {
    return table_.tokens(index, 0);
  }
  std::span<const std::int32_t> tokens2(std::int64_t index) const {
    return table_.tokens(index, 1);
  }
  std::int64_t label(std::int64_t index) const { return table_.label(index); }
  std::int32_t pad_id() const { return pad_id_; }

 private:
  TokenTable table_;
  std::int32_t pad_id_;
};

}  // namespace topkformer::data
