#include "topkformer/data/tsv_readers.h"

#include <charconv>
#include <fstream>
#include <optional>
#include <string_view>

#include <spdlog/spdlog.h>

#include "topkformer/core/error.h"
#include "topkformer/data/listops_tokenizer.h"

namespace topkformer::data {

namespace {

using Fields = std::vector<std::string_view>;

Fields split_tabs(std::string_view line) {
  Fields fields;
  std::size_t start = 0;
  for (std::size_t tab = line.find('\t'); tab != std::string_view::npos;
       tab = line.find('\t', start)) {
    fields.push_back(line.substr(start, tab - start));
    start = tab + 1;
  }
  fields.push_back(line.substr(start));
  return fields;
}

// An integer, optionally written with a zero fractional part ("1.0", as
// floats are printed); nothing for anything else.
std::optional<std::int64_t> parse_label(std::string_view field) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(field.data(), field.data() + field.size(), value);
  if (error != std::errc() || end == field.data()) return std::nullopt;
  std::string_view rest(end, static_cast<std::size_t>(field.data() + field.size() - end));
  if (!rest.empty()) {
    if (rest.front() != '.' || rest.find_first_not_of('0', 1) != std::string_view::npos)
      return std::nullopt;
  }
  return value;
}

// A field or line for an error message: long text cut, and tabs and other
// control bytes escaped (\t, \r, \x00), so that a CR cannot overwrite the
// message on a terminal, nor a NUL cut it short, nor ESC start a sequence.
// Bytes from 0x80 up are kept: they are UTF-8 text in the data sets.
std::string shown(std::string_view text) {
  constexpr std::size_t limit = 60;
  std::string result;
  for (const char character : text.substr(0, limit)) {
    const auto byte = static_cast<unsigned char>(character);
    if (character == '\t') {
      result += "\\t";
    } else if (character == '\r') {
      result += "\\r";
    } else if (byte < 0x20 || byte == 0x7f) {
      static constexpr char digits[] = "0123456789abcdef";
      result += {'\\', 'x', digits[byte >> 4], digits[byte & 15]};
    } else {
      result += character;
    }
  }
  return text.size() > limit ? result + "..." : result;
}

// An expression the ListOps tokenizer cannot encode is a bad line here, where
// its file and line are known (the tokenizer runs later, on the records).
std::string check_listops_source(std::string_view text) {
  const std::optional<std::string> token = ListOpsTokenizer::first_unknown_token(text);
  return token ? "unknown ListOps token '" + shown(*token) + "'" : std::string();
}

struct Layout {
  std::string_view header;  // the exact first line; empty when the file has none
  std::size_t columns = 0;
  std::size_t label_column = 0;
  std::vector<std::size_t> text_columns;
  std::int64_t max_label = 0;  // labels are 0..max_label
  // What is wrong with the text of column 0 ("" when nothing), for formats
  // whose text must be checked line by line; null for free text.
  std::string (*check_text)(std::string_view text) = nullptr;
};

const Layout& layout(TsvFormat format) {
  static const Layout listops{"Source\tTarget", 2, 1, {0}, 9, check_listops_source};
  static const Layout imdb{"label\ttext", 2, 0, {1}, 1};
  static const Layout aan{"", 5, 0, {3, 4}, 1};
  switch (format) {
    case TsvFormat::listops:
      return listops;
    case TsvFormat::imdb:
      return imdb;
    case TsvFormat::aan:
      return aan;
    case TsvFormat::count:
      break;
  }
  throw Error("tsv readers: unknown format");
}

// Checks every data line of `path` against `format` and hands its fields,
// label and line number to `add`. Returns the number of bad lines skipped.
template <typename Add>
std::int64_t for_each_row(const std::filesystem::path& path, const Layout& format,
                          const ReadOptions& options, Add add) {
  std::error_code error;
  TKF_CHECK(std::filesystem::is_regular_file(path, error), path.string(),
            ": cannot read: ", error ? error.message() : "not a regular file");
  std::ifstream in(path, std::ios::binary);
  TKF_CHECK(in.is_open(), path.string(), ": cannot open for reading");
  std::int64_t skipped = 0;
  std::int64_t line_number = 0;
  for (std::string text; std::getline(in, text);) {
    std::string_view line = text;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const auto where = [&] { return detail::concat(path.string(), ":", line_number, ": "); };
    if (line_number == 1 && !format.header.empty()) {
      TKF_CHECK(line == format.header, where(), "expected the header '", shown(format.header),
                "', found '", shown(line), "'");
      continue;
    }
    if (line.empty()) continue;

    const Fields fields = split_tabs(line);
    std::string problem;
    std::optional<std::int64_t> label;
    if (fields.size() != format.columns) {
      problem = detail::concat("expected ", format.columns, " tab-separated columns, found ",
                               fields.size());
    } else if (label = parse_label(fields[format.label_column]); !label) {
      problem =
          detail::concat("label '", shown(fields[format.label_column]), "' is not an integer");
    } else if (*label < 0 || *label > format.max_label) {
      problem = detail::concat("label ", *label, " is outside 0..", format.max_label);
    } else if (format.check_text) {
      problem = format.check_text(fields[0]);
    }
    if (problem.empty()) {
      add(fields, *label, line_number);
    } else if (options.skip_bad_lines) {
      ++skipped;
    } else {
      throw Error(where() + problem);
    }
  }
  TKF_CHECK(!in.bad(), path.string(), ": read failed");
  return skipped;
}

// An empty dataset is an error; skipped lines are logged, so a run that
// skips them says how many.
void finish_reading(const std::filesystem::path& path, const TsvCounts& counts) {
  TKF_CHECK(counts.records > 0, path.string(), ": no records",
            counts.skipped_lines > 0
                ? detail::concat(" (", counts.skipped_lines, " bad lines skipped)")
                : std::string());
  if (counts.skipped_lines > 0) {
    spdlog::warn("{}: skipped {} bad lines (skip_bad_lines), read {} records", path.string(),
                 counts.skipped_lines, counts.records);
  }
}

TextRecords read_text_records(const std::filesystem::path& path, TsvFormat format,
                              const ReadOptions& options) {
  TextRecords result;
  result.skipped_lines = for_each_tsv_record(path, format, options, [&](const TsvRecord& record) {
                           result.records.push_back({std::string(record.texts[0]), record.label});
                         }).skipped_lines;
  return result;
}

}  // namespace

std::int64_t texts_per_record(TsvFormat format) {
  return static_cast<std::int64_t>(layout(format).text_columns.size());
}

std::int64_t max_label(TsvFormat format) {
  return layout(format).max_label;
}

TsvCounts for_each_tsv_record(const std::filesystem::path& path, TsvFormat format,
                              const ReadOptions& options,
                              const std::function<void(const TsvRecord&)>& visit) {
  const Layout& columns = layout(format);
  std::vector<std::string_view> texts(columns.text_columns.size());
  TsvCounts counts;
  counts.skipped_lines = for_each_row(
      path, columns, options, [&](const Fields& fields, std::int64_t label, std::int64_t line) {
        for (std::size_t i = 0; i < texts.size(); ++i) texts[i] = fields[columns.text_columns[i]];
        visit({line, texts, label});
        ++counts.records;
      });
  finish_reading(path, counts);
  return counts;
}

TextRecords read_listops_tsv(const std::filesystem::path& path, const ReadOptions& options) {
  return read_text_records(path, TsvFormat::listops, options);
}

TextRecords read_imdb_tsv(const std::filesystem::path& path, const ReadOptions& options) {
  return read_text_records(path, TsvFormat::imdb, options);
}

TextPairRecords read_aan_tsv(const std::filesystem::path& path, const ReadOptions& options) {
  TextPairRecords result;
  TsvCounts counts;
  counts.skipped_lines = for_each_row(
      path, layout(TsvFormat::aan), options,
      [&](const Fields& fields, std::int64_t label, std::int64_t /*line*/) {
        result.records.push_back({std::string(fields[1]), std::string(fields[2]),
                                  std::string(fields[3]), std::string(fields[4]), label});
      });
  counts.records = static_cast<std::int64_t>(result.records.size());
  finish_reading(path, counts);
  result.skipped_lines = counts.skipped_lines;
  return result;
}

}  // namespace topkformer::data
