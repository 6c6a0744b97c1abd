// Readers of the tab-separated files of the LRA text tasks: line by line to a
// callback, or as records (text and integer label); tokenization is separate
// (dataset.h). See Note [TSV lines].
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "topkformer/core/names.h"

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

// The file formats below; the name is the one token caches record (dataset.h).
enum class TsvFormat { listops, imdb, aan, count };
inline constexpr auto tsv_format_names =
    std::to_array<std::string_view>({"listops", "imdb", "aan"});
static_assert(names_match<TsvFormat>(tsv_format_names));
// The texts of a record (AAN: 2, else 1) and the largest label (ListOps: 9, else 1).
std::int64_t texts_per_record(TsvFormat format);
std::int64_t max_label(TsvFormat format);

// A good line: its texts and label, viewing the line being read.
struct TsvRecord {
  std::int64_t line = 0;
  std::span<const std::string_view> texts;
  std::int64_t label = 0;
};

struct TsvCounts {
  std::int64_t records = 0;
  std::int64_t skipped_lines = 0;  // bad lines passed over (skip_bad_lines)
};

// Reads `path` a line at a time (the file is never held whole) and calls
// `visit` with every good line's record, in file order. Lines are checked,
// and the errors are, as for the readers below.
TsvCounts for_each_tsv_record(const std::filesystem::path& path, TsvFormat format,
                              const ReadOptions& options,
                              const std::function<void(const TsvRecord&)>& visit);

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
