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

struct TsvFormat {
  std::string_view header;  // the exact first line; empty when the file has none
  std::size_t columns = 0;
  std::size_t label_column = 0;
  std::int64_t max_label = 0;  // labels are 0..max_label
  // What is wrong with the text of column 0 ("" when nothing), for formats
  // whose text must be checked line by line; null for free text.
  std::string (*check_text)(std::string_view text) = nullptr;
};

using Fields = std::vector<std::string_view>;

std::string read_whole_file(const std::filesystem::path& path) {
  std::error_code error;
  const std::uintmax_t size = std::filesystem::file_size(path, error);
  TKF_CHECK(!error, path.string(), ": cannot read: ", error.message());
  std::ifstream file(path, std::ios::binary);
  TKF_CHECK(file.is_open(), path.string(), ": cannot open for reading");
  std::string contents(size, '\0');
  file.read(contents.data(), static_cast<std::streamsize>(size));
  TKF_CHECK(static_cast<std::uintmax_t>(file.gcount()) == size, path.string(), ": read failed");
  return contents;
}

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

// Checks every data line of `path` against `format` and hands its fields and
// label to `add`. Returns the number of bad lines skipped.
template <typename Add>
std::int64_t for_each_row(const std::filesystem::path& path, const TsvFormat& format,
                          const ReadOptions& options, Add add) {
  const std::string contents = read_whole_file(path);
  const std::string_view text = contents;
  std::int64_t skipped = 0;
  std::int64_t line_number = 0;
  for (std::size_t start = 0; start < text.size();) {
    const std::size_t newline = std::min(text.find('\n', start), text.size());
    std::string_view line = text.substr(start, newline - start);
    start = newline + 1;
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
      add(fields, *label);
    } else if (options.skip_bad_lines) {
      ++skipped;
    } else {
      throw Error(where() + problem);
    }
  }
  return skipped;
}

// An empty dataset is an error; skipped lines are logged, so a run that
// skips them says how many.
template <typename Records>
void finish_reading(const std::filesystem::path& path, const Records& result) {
  TKF_CHECK(!result.records.empty(), path.string(), ": no records",
            result.skipped_lines > 0
                ? detail::concat(" (", result.skipped_lines, " bad lines skipped)")
                : std::string());
  if (result.skipped_lines > 0) {
    spdlog::warn("{}: skipped {} bad lines (skip_bad_lines), read {} records", path.string(),
                 result.skipped_lines, result.records.size());
  }
}

TextRecords read_text_records(const std::filesystem::path& path, const TsvFormat& format,
                              std::size_t text_column, const ReadOptions& options) {
  TextRecords result;
  result.skipped_lines =
      for_each_row(path, format, options, [&](const Fields& fields, std::int64_t label) {
        result.records.push_back({std::string(fields[text_column]), label});
      });
  finish_reading(path, result);
  return result;
}

// An expression the ListOps tokenizer cannot encode is a bad line here, where
// its file and line are known (the tokenizer runs later, on the records).
std::string check_listops_source(std::string_view text) {
  const std::optional<std::string> token = ListOpsTokenizer::first_unknown_token(text);
  return token ? "unknown ListOps token '" + shown(*token) + "'" : std::string();
}

}  // namespace

TextRecords read_listops_tsv(const std::filesystem::path& path, const ReadOptions& options) {
  const TsvFormat format{"Source\tTarget", 2, 1, 9, check_listops_source};
  return read_text_records(path, format, 0, options);
}

TextRecords read_imdb_tsv(const std::filesystem::path& path, const ReadOptions& options) {
  const TsvFormat format{"label\ttext", 2, 0, 1};
  return read_text_records(path, format, 1, options);
}

TextPairRecords read_aan_tsv(const std::filesystem::path& path, const ReadOptions& options) {
  const TsvFormat format{"", 5, 0, 1};
  TextPairRecords result;
  result.skipped_lines =
      for_each_row(path, format, options, [&](const Fields& fields, std::int64_t label) {
        result.records.push_back({std::string(fields[1]), std::string(fields[2]),
                                  std::string(fields[3]), std::string(fields[4]), label});
      });
  finish_reading(path, result);
  return result;
}

}  // namespace topkformer::data
