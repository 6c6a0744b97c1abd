#include "topkformer/data/lm_corpus.h"

#include <algorithm>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>

#include "data/cache_file.h"
#include "topkformer/core/error.h"

namespace topkformer::data {
namespace {

// The cache's count is the number of ids; its payload, the ids (u32, native
// byte order). See Note [cache files].
constexpr CacheMagic cache_magic{'T', 'K', 'F', 'T', 'O', 'K', 'S', '1'};
constexpr std::string_view what = "lm corpus";
constexpr std::size_t ids_per_write = std::size_t{1} << 16;

void write_cache(const std::filesystem::path& source, const Tokenizer& tokenizer,
                 std::int32_t eos_id, const CacheIdentity& identity) {
  std::ifstream in(source, std::ios::binary);
  TKF_CHECK(in, what, ": cannot read '", source.string(), "'");
  CacheWriter out(identity, cache_magic, what);
  const std::int64_t vocab_size = tokenizer.vocab_size();
  std::uint64_t count = 0;
  std::uint64_t text_tokens = 0;
  std::vector<std::uint32_t> pending;
  std::string line;
  for (std::int64_t line_number = 1; std::getline(in, line); ++line_number) {
    const TokenIds ids = tokenizer.encode(line);
    for (const std::int32_t id : ids) {
      TKF_CHECK(id >= 0 && id < vocab_size, what, ": ", source.string(), ":", line_number,
                ": the tokenizer gave id ", id, ", outside [0, ", vocab_size, ")");
      pending.push_back(static_cast<std::uint32_t>(id));
    }
    pending.push_back(static_cast<std::uint32_t>(eos_id));
    text_tokens += ids.size();
    if (pending.size() >= ids_per_write) {
      out.write(std::span<const std::uint32_t>(pending));
      count += pending.size();
      pending.clear();
    }
  }
  TKF_CHECK(!in.bad(), what, ": read error in '", source.string(), "'");
  TKF_CHECK(text_tokens > 0, what, ": '", source.string(), "' holds no tokens");
  out.write(std::span<const std::uint32_t>(pending));
  out.commit(count + pending.size());
}

struct MappedIds {
  std::shared_ptr<const MappedCache> cache;  // null when stale
  std::span<const std::uint32_t> ids;
};

// The ids of the cache at `identity`, mapped, when it is current. Throws when
// a current cache holds an id outside the vocabulary: it would fail much
// later, in the embedding's gather_rows, naming neither this file nor the
// position.
MappedIds map_if_current(const CacheIdentity& identity, std::int64_t vocab_size) {
  auto cache = std::make_shared<MappedCache>(identity.path, cache_magic, identity.header);
  const auto ids = cache_array<std::uint32_t>(cache->payload(), 0, cache->count());
  if (!*cache || ids.empty() || ids.size_bytes() != cache->payload().size()) return {};
  check_cached_ids(*cache, ids, vocab_size, what, identity.path);
  return {std::move(cache), ids};
}

}  // namespace

TokenCache::TokenCache(const std::filesystem::path& source, const Tokenizer& tokenizer,
                       std::int32_t eos_id, const std::filesystem::path& cache_dir) {
  TKF_CHECK(eos_id >= 0 && eos_id < tokenizer.vocab_size(), what, ": eos id ", eos_id,
            " is outside the vocabulary [0, ", tokenizer.vocab_size(), ")");
  const CacheIdentity identity = cache_identity(
      source, {{"tokenizer", tokenizer.fingerprint()}, {"eos_id", eos_id}}, cache_dir, "ids", what);
  path_ = identity.path;
  MappedIds mapped = map_if_current(identity, tokenizer.vocab_size());
  if (!mapped.cache) {
    write_cache(source, tokenizer, eos_id, identity);
    built_ = true;
    mapped = map_if_current(identity, tokenizer.vocab_size());
    TKF_CHECK(mapped.cache, what, ": the cache '", path_.string(),
              "' just written does not read back");
  }
  mapping_ = std::move(mapped.cache);
  ids_ = mapped.ids;
}

LmBlocks::LmBlocks(std::span<const std::uint32_t> ids, std::int64_t seq_len)
    : ids_(ids), seq_len_(seq_len) {
  TKF_CHECK(seq_len >= 1, "lm blocks: seq_len must be at least 1, got ", seq_len);
  const auto tokens = static_cast<std::int64_t>(ids.size());
  TKF_CHECK(tokens >= seq_len + 1, "lm blocks: a corpus of ", tokens,
            " tokens is shorter than one block of seq_len + 1 = ", seq_len + 1);
  count_ = (tokens - 1) / seq_len;
}

LmExample LmBlocks::block(std::int64_t index) const {
  TKF_CHECK(index >= 0 && index < count_, "lm blocks: block ", index, " is outside [0, ", count_,
            ")");
  const auto start = static_cast<std::size_t>(index * seq_len_);
  const auto length = static_cast<std::size_t>(seq_len_);
  return {ids_.subspan(start, length), ids_.subspan(start + 1, length)};
}

std::vector<LmExample> lm_eval_segments(std::span<const std::uint32_t> ids, std::int64_t seq_len) {
  TKF_CHECK(seq_len >= 1, "lm eval segments: seq_len must be at least 1, got ", seq_len);
  TKF_CHECK(ids.size() >= 2, "lm eval segments: a corpus of ", ids.size(),
            " tokens has nothing to predict");
  const std::size_t predictions = ids.size() - 1;
  const auto segment_length = static_cast<std::size_t>(seq_len);
  std::vector<LmExample> segments;
  segments.reserve((predictions + segment_length - 1) / segment_length);
  for (std::size_t start = 0; start < predictions; start += segment_length) {
    const std::size_t length = std::min(segment_length, predictions - start);
    segments.push_back({ids.subspan(start, length), ids.subspan(start + 1, length)});
  }
  return segments;
}

}  // namespace topkformer::data
