// Readers of the tab-separated files of the LRA text tasks. They return raw
// records (text and integer label); tokenization is separate (dataset.h).
// See Note [TSV lines].
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

// Note [TSV lines]
// Fields are split on tabs only: no quoting, as LRA reads them. Lines may end
// in LF or CRLF; empty lines are not records and are passed over. A bad line
// (wrong number of columns, a label that is not an integer in range, a
// ListOps expression with a token the ListOps tokenizer does not know) is an
// Error naming `path:line`, or, with skip_bad_lines, is counted and skipped.
// A missing or unreadable file, a wrong header and a file without records are
// always Errors.

namespace topkformer::data {

struct ReadOptions {
  bool skip_bad_lines = false;
};

struct TextRecord {
  std::string text;
  std::int64_t label = 0;
};

struct TextPairRecord {
  std::string id1, id2;
  std::string text1, text2;
  std::int64_t label = 0;
};

struct TextRecords {
  std::vector<TextRecord> records;
  std::int64_t skipped_lines = 0;  // bad lines passed over (skip_bad_lines)
};

struct TextPairRecords {
  std::vector<TextPairRecord> records;
  std::int64_t skipped_lines = 0;
};

// LRA ListOps: header `Source<TAB>Target`, then expression and label 0..9.
TextRecords read_listops_tsv(const std::filesystem::path& path, const ReadOptions& options = {});

// IMDb reviews: header `label<TAB>text`, then label 0 or 1 and the review.
TextRecords read_imdb_tsv(const std::filesystem::path& path, const ReadOptions& options = {});

// LRA AAN (new_aan_pairs.*.tsv): no header; `label<TAB>id1<TAB>id2<TAB>text1<TAB>text2`
// with label 1 when paper 1 cites paper 2, else 0. LRA reads that column as a
// float, so every reader accepts a label with a zero fractional part ("1.0")
// as that integer. The texts are kept exactly as written.
TextPairRecords read_aan_tsv(const std::filesystem::path& path, const ReadOptions& options = {});

}  // namespace topkformer::data
