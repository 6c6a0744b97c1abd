#include "topkformer/data/dataset.h"

#include <algorithm>
#include <array>
#include <limits>
#include <type_traits>
#include <utility>

#include <spdlog/spdlog.h>

#include "data/cache_file.h"
#include "topkformer/core/error.h"

namespace topkformer::data {

namespace {

constexpr CacheMagic cache_magic{'T', 'K', 'F', 'I', 'T', 'E', 'M', '1'};
constexpr std::string_view what = "dataset cache";

void check_options(const TokenizeOptions& options, std::string_view dataset) {
  TKF_CHECK(options.max_length >= (options.prepend_cls ? 2 : 1), dataset,
            ": max_length must leave room for at least one text token, got ", options.max_length,
            options.prepend_cls ? " with CLS" : "");
}

void check_index(std::int64_t index, std::int64_t size, const char* name) {
  TKF_CHECK(index >= 0 && index < size, name, ": index ", index, " outside [0, ", size, ")");
}

std::int32_t checked_label(std::int64_t label) {
  TKF_CHECK(label >= 0 && label <= std::numeric_limits<std::int32_t>::max(), "dataset: label ",
            label, " is outside [0, 2^31)");
  return static_cast<std::int32_t>(label);
}

// The ids an item keeps of `text`: CLS first when asked, at most max_length.
TokenIds encode_text(const Tokenizer& tokenizer, std::string_view text,
                     const TokenizeOptions& options) {
  TokenIds ids = tokenizer.encode(text);
  const auto room = static_cast<std::size_t>(options.max_length - (options.prepend_cls ? 1 : 0));
  if (ids.size() > room) ids.resize(room);
  if (options.prepend_cls) ids.insert(ids.begin(), tokenizer.cls_id());
  return ids;
}

// The arrays of a table tokenized in memory.
struct OwnedArrays {
  std::vector<std::int32_t> ids;
  std::vector<std::uint64_t> offsets{0};
  std::vector<std::int32_t> labels;
};

// `texts_of(record)` gives the record's texts, an array of string views.
template <typename Record, typename Texts>
TokenTable encode_records(const std::vector<Record>& records, const Tokenizer& tokenizer,
                          const TokenizeOptions& options, std::string_view dataset,
                          Texts texts_of) {
  check_options(options, dataset);
  auto owned = std::make_shared<OwnedArrays>();
  constexpr auto texts_per_item =
      std::int64_t(std::tuple_size_v<std::invoke_result_t<Texts, const Record&>>);
  for (const Record& record : records) {
    for (const std::string_view text : texts_of(record)) {
      const TokenIds ids = encode_text(tokenizer, text, options);
      owned->ids.insert(owned->ids.end(), ids.begin(), ids.end());
      owned->offsets.push_back(owned->ids.size());
    }
    owned->labels.push_back(checked_label(record.label));
  }
  const TokenArrays arrays{texts_per_item, owned->ids, owned->offsets, owned->labels};
  return TokenTable(arrays, std::move(owned));
}

nlohmann::json cache_encoding(TsvFormat format, const Tokenizer& tokenizer,
                              const TokenizeOptions& options, const ReadOptions& read_options) {
  return {{"format", enum_name(tsv_format_names, format)},
          {"tokenizer", tokenizer.fingerprint()},
          {"max_length", options.max_length},
          {"prepend_cls", options.prepend_cls},
          {"skip_bad_lines", read_options.skip_bad_lines}};
}

// Streams `source` into the cache at `identity`: the ids as each record is
// read, then the offsets and labels, which are small.
void write_cache(const std::filesystem::path& source, TsvFormat format, const Tokenizer& tokenizer,
                 const TokenizeOptions& options, const ReadOptions& read_options,
                 const CacheIdentity& identity) {
  CacheWriter out(identity, cache_magic, what);
  const std::int64_t vocab_size = tokenizer.vocab_size();
  std::vector<std::uint64_t> offsets{0};
  std::vector<std::int32_t> labels;
  const TsvCounts counts =
      for_each_tsv_record(source, format, read_options, [&](const TsvRecord& record) {
        for (const std::string_view text : record.texts) {
          const TokenIds ids = encode_text(tokenizer, text, options);
          for (const std::int32_t id : ids) {
            TKF_CHECK(id >= 0 && id < vocab_size, what, ": ", source.string(), ":", record.line,
                      ": the tokenizer gave id ", id, ", outside [0, ", vocab_size, ")");
          }
          out.write(std::span<const std::int32_t>(ids));
          offsets.push_back(offsets.back() + ids.size());
        }
        labels.push_back(checked_label(record.label));
      });
  out.align(sizeof(std::uint64_t));
  const std::array<std::uint64_t, 2> sizes{labels.size(),
                                           static_cast<std::uint64_t>(counts.skipped_lines)};
  out.write(std::span<const std::uint64_t>(sizes));
  out.write(std::span<const std::uint64_t>(offsets));
  out.write(std::span<const std::int32_t>(labels));
  out.commit(offsets.back());
}

struct MappedTable {
  std::shared_ptr<const MappedCache> cache;  // null when stale
  TokenArrays arrays;
  std::uint64_t skipped_lines = 0;
};

// The first damage in the offsets and labels of a cache whose sizes are
// right, or "" when there is none.
std::string damage(const TokenArrays& arrays, const TokenizeOptions& options, TsvFormat format) {
  const std::span<const std::uint64_t> offsets = arrays.offsets;
  if (offsets.front() != 0) return "the first offset is not 0";
  for (std::size_t k = 1; k < offsets.size(); ++k) {
    if (offsets[k] < offsets[k - 1] ||
        offsets[k] - offsets[k - 1] > static_cast<std::uint64_t>(options.max_length)) {
      return detail::concat("text ", k - 1, " has the offsets ", offsets[k - 1], " to ",
                            offsets[k]);
    }
  }
  if (offsets.back() != arrays.ids.size()) return "the last offset is not the id count";
  const auto label = std::find_if(arrays.labels.begin(), arrays.labels.end(),
                                  [&](std::int32_t l) { return l < 0 || l > max_label(format); });
  if (label != arrays.labels.end()) {
    return detail::concat("label ", *label, " of item ", label - arrays.labels.begin(),
                          " is outside 0..", max_label(format));
  }
  return "";
}

MappedTable map_if_current(const CacheIdentity& identity, TsvFormat format,
                           const TokenizeOptions& options, std::int64_t vocab_size) {
  auto cache = std::make_shared<MappedCache>(identity.path, cache_magic, identity.header);
  const std::span<const std::byte> payload = cache->payload();
  const std::uint64_t count = cache->count();
  if (!*cache || count > payload.size() / sizeof(std::int32_t)) return {};
  const std::size_t sizes_at = (count * sizeof(std::int32_t) + 7) / 8 * 8;
  const auto sizes = cache_array<std::uint64_t>(payload, sizes_at, 2);
  if (sizes.empty() || sizes[0] == 0 || sizes[0] > payload.size()) return {};
  const std::uint64_t items = sizes[0];
  const std::size_t offsets_at = sizes_at + sizes.size_bytes();
  const auto texts = static_cast<std::uint64_t>(texts_per_record(format));
  const auto offsets = cache_array<std::uint64_t>(payload, offsets_at, items * texts + 1);
  const auto labels = cache_array<std::int32_t>(payload, offsets_at + offsets.size_bytes(), items);
  if (offsets.empty() || labels.empty() ||
      offsets_at + offsets.size_bytes() + labels.size_bytes() != payload.size()) {
    return {};
  }
  const TokenArrays arrays{static_cast<std::int64_t>(texts),
                           cache_array<std::int32_t>(payload, 0, count), offsets, labels};
  if (const std::string found = damage(arrays, options, format); !found.empty()) {
    throw_corrupt_cache(what, identity.path, found);
  }
  check_cached_ids(*cache, arrays.ids, vocab_size, what, identity.path);
  return {std::move(cache), arrays, sizes[1]};
}

}  // namespace

TokenTable::TokenTable(TokenArrays arrays, std::shared_ptr<const void> storage)
    : arrays_(arrays), storage_(std::move(storage)) {
  const auto items = static_cast<std::uint64_t>(arrays.labels.size());
  TKF_CHECK(
      arrays.texts_per_item >= 1 && !arrays.offsets.empty() && arrays.offsets.front() == 0 &&
          arrays.offsets.size() == items * static_cast<std::uint64_t>(arrays.texts_per_item) + 1 &&
          arrays.offsets.back() == arrays.ids.size(),
      "TokenTable: ", arrays.labels.size(), " labels, ", arrays.offsets.size(), " offsets and ",
      arrays.ids.size(), " ids do not make items of ", arrays.texts_per_item, " texts");
}

TokenTable TokenTable::encode(const std::vector<TextRecord>& records, const Tokenizer& tokenizer,
                              const TokenizeOptions& options) {
  return encode_records(
      records, tokenizer, options, "ClassificationDataset",
      [](const TextRecord& record) { return std::array<std::string_view, 1>{record.text}; });
}

TokenTable TokenTable::encode(const std::vector<TextPairRecord>& records,
                              const Tokenizer& tokenizer, const TokenizeOptions& options) {
  return encode_records(records, tokenizer, options, "PairDataset",
                        [](const TextPairRecord& record) {
                          return std::array<std::string_view, 2>{record.text1, record.text2};
                        });
}

std::int64_t TokenTable::size() const {
  return std::ssize(arrays_.labels);
}

std::span<const std::int32_t> TokenTable::tokens(std::int64_t index, std::int64_t text) const {
  check_index(index, size(), "dataset");
  check_index(text, arrays_.texts_per_item, "dataset text");
  const auto k = static_cast<std::size_t>(index * arrays_.texts_per_item + text);
  const std::uint64_t begin = arrays_.offsets[k], end = arrays_.offsets[k + 1];
  return arrays_.ids.subspan(static_cast<std::size_t>(begin),
                             static_cast<std::size_t>(end - begin));
}

std::int64_t TokenTable::label(std::int64_t index) const {
  check_index(index, size(), "dataset");
  return arrays_.labels[static_cast<std::size_t>(index)];
}

void TokenTable::keep(const std::vector<std::int64_t>& indices) {
  auto owned = std::make_shared<OwnedArrays>();
  for (const std::int64_t index : indices) {
    for (std::int64_t text = 0; text < arrays_.texts_per_item; ++text) {
      const std::span<const std::int32_t> ids = tokens(index, text);
      owned->ids.insert(owned->ids.end(), ids.begin(), ids.end());
      owned->offsets.push_back(owned->ids.size());
    }
    owned->labels.push_back(arrays_.labels[static_cast<std::size_t>(index)]);
  }
  const TokenArrays arrays{arrays_.texts_per_item, owned->ids, owned->offsets, owned->labels};
  *this = TokenTable(arrays, std::move(owned));
}

CachedTokenTable read_token_table(const std::filesystem::path& source, TsvFormat format,
                                  const Tokenizer& tokenizer, const TokenizeOptions& options,
                                  const ReadOptions& read_options,
                                  const std::filesystem::path& cache_dir) {
  check_options(options, what);
  const CacheIdentity identity = cache_identity(
      source, cache_encoding(format, tokenizer, options, read_options), cache_dir, "items", what);
  MappedTable mapped = map_if_current(identity, format, options, tokenizer.vocab_size());
  const bool built = !mapped.cache;
  if (built) {
    write_cache(source, format, tokenizer, options, read_options, identity);
    mapped = map_if_current(identity, format, options, tokenizer.vocab_size());
    TKF_CHECK(mapped.cache, what, ": the cache '", identity.path.string(),
              "' just written does not read back");
  } else if (mapped.skipped_lines > 0) {
    spdlog::warn("{}: {} bad lines were skipped (skip_bad_lines) when its token cache {} was built",
                 source.string(), mapped.skipped_lines, identity.path.string());
  }
  return {TokenTable(mapped.arrays, std::move(mapped.cache)), identity.path, built};
}

ClassificationDataset::ClassificationDataset(const std::vector<TextRecord>& records,
                                             const Tokenizer& tokenizer,
                                             const TokenizeOptions& options)
    : ClassificationDataset(TokenTable::encode(records, tokenizer, options), tokenizer.pad_id()) {}

ClassificationDataset::ClassificationDataset(TokenTable table, std::int32_t pad_id)
    : table_(std::move(table)), pad_id_(pad_id) {
  TKF_CHECK(table_.texts_per_item() == 1, "ClassificationDataset: items of ",
            table_.texts_per_item(), " texts, expected 1");
}

PairDataset::PairDataset(const std::vector<TextPairRecord>& records, const Tokenizer& tokenizer,
                         const TokenizeOptions& options)
    : PairDataset(TokenTable::encode(records, tokenizer, options), tokenizer.pad_id()) {}

PairDataset::PairDataset(TokenTable table, std::int32_t pad_id)
    : table_(std::move(table)), pad_id_(pad_id) {
  TKF_CHECK(table_.texts_per_item() == 2, "PairDataset: items of ", table_.texts_per_item(),
            " texts, expected 2");
}

}  // namespace topkformer::data
