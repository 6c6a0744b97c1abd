#include "topkformer/data/lm_corpus.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "topkformer/core/error.h"

namespace topkformer::data {
namespace {

// Cache file layout: magic (8 bytes), id count (u64), header length (u64), the
// JSON header, zeros up to a multiple of 8 bytes, then the ids (u32, native
// byte order).
constexpr std::array<char, 8> cache_magic{'T', 'K', 'F', 'T', 'O', 'K', 'S', '1'};
constexpr std::size_t prelude_bytes = cache_magic.size() + 2 * sizeof(std::uint64_t);
constexpr std::size_t ids_per_write = std::size_t{1} << 16;

std::size_t ids_offset(std::size_t header_bytes) {
  return (prelude_bytes + header_bytes + 7) / 8 * 8;
}

// What a cache is made from: the source's identity and the encoding.
struct CacheIdentity {
  std::string name;    // the file name, one per (source path, tokenizer, eos id)
  std::string header;  // all of it, as the cache stores it
};

CacheIdentity cache_identity(const std::filesystem::path& source, const Tokenizer& tokenizer,
                             std::int32_t eos_id) {
  const auto unreadable = [&source](const std::string& why) {
    return Error("lm corpus: cannot read '" + source.string() + "': " + why);
  };
  std::error_code error;
  if (!std::filesystem::is_regular_file(source, error))
    throw unreadable(error ? error.message() : "not a regular file");
  const std::uintmax_t bytes = std::filesystem::file_size(source, error);
  if (error) throw unreadable(error.message());
  const auto modified = std::filesystem::last_write_time(source, error);
  if (error) throw unreadable(error.message());
  const std::filesystem::path absolute = std::filesystem::weakly_canonical(source, error);
  if (error) throw unreadable(error.message());

  nlohmann::json header = {
      {"source", absolute.string()},
      {"tokenizer", tokenizer.fingerprint()},
      {"eos_id", eos_id},
  };
  // A path need not be UTF-8: its invalid bytes become U+FFFD rather than an exception.
  const auto text = [&header] {
    return header.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  const std::string name =
      source.filename().string() + "." + std::to_string(std::hash<std::string>{}(text())) + ".ids";
  header["source_bytes"] = bytes;
  header["source_modified"] = modified.time_since_epoch().count();
  return {name, text()};
}

// Deletes a temporary file unless it was renamed into place.
class TemporaryFile {
 public:
  explicit TemporaryFile(std::filesystem::path path) : path_(std::move(path)) {}
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;
  ~TemporaryFile() {
    std::error_code ignored;
    if (!committed_) std::filesystem::remove(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }
  void rename_to(const std::filesystem::path& target) {
    std::error_code error;
    std::filesystem::rename(path_, target, error);
    TKF_CHECK(!error, "lm corpus: cannot rename '", path_.string(), "' to '", target.string(),
              "': ", error.message());
    committed_ = true;
  }

 private:
  std::filesystem::path path_;
  bool committed_ = false;
};

void write_u64(std::ofstream& out, std::uint64_t value) {
  out.write(reinterpret_cast<const char*>(&value), sizeof value);
}

void write_ids(std::ofstream& out, const std::vector<std::uint32_t>& ids) {
  out.write(reinterpret_cast<const char*>(ids.data()),
            static_cast<std::streamsize>(ids.size() * sizeof(std::uint32_t)));
}

void write_cache(const std::filesystem::path& source, const Tokenizer& tokenizer,
                 std::int32_t eos_id, const std::string& header,
                 const std::filesystem::path& target) {
  std::ifstream in(source, std::ios::binary);
  TKF_CHECK(in, "lm corpus: cannot read '", source.string(), "'");
  // The process id keeps ranks that build the same cache at once apart.
  TemporaryFile temporary(target.string() + ".tmp-" + std::to_string(::getpid()));
  std::ofstream out(temporary.path(), std::ios::binary | std::ios::trunc);
  TKF_CHECK(out, "lm corpus: cannot write '", temporary.path().string(), "'");

  out.write(cache_magic.data(), cache_magic.size());
  write_u64(out, 0);  // the id count, filled in once known
  write_u64(out, header.size());
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  const std::string padding(ids_offset(header.size()) - prelude_bytes - header.size(), '\0');
  out.write(padding.data(), static_cast<std::streamsize>(padding.size()));

  const std::int64_t vocab_size = tokenizer.vocab_size();
  std::uint64_t count = 0;
  std::uint64_t text_tokens = 0;
  std::vector<std::uint32_t> pending;
  std::string line;
  for (std::int64_t line_number = 1; std::getline(in, line); ++line_number) {
    const TokenIds ids = tokenizer.encode(line);
    for (const std::int32_t id : ids) {
      TKF_CHECK(id >= 0 && id < vocab_size, "lm corpus: ", source.string(), ":", line_number,
                ": the tokenizer gave id ", id, ", outside [0, ", vocab_size, ")");
      pending.push_back(static_cast<std::uint32_t>(id));
    }
    pending.push_back(static_cast<std::uint32_t>(eos_id));
    text_tokens += ids.size();
    if (pending.size() >= ids_per_write) {
      write_ids(out, pending);
      count += pending.size();
      pending.clear();
    }
  }
  TKF_CHECK(!in.bad(), "lm corpus: read error in '", source.string(), "'");
  TKF_CHECK(text_tokens > 0, "lm corpus: '", source.string(), "' holds no tokens");
  write_ids(out, pending);
  count += pending.size();

  out.seekp(static_cast<std::streamoff>(cache_magic.size()));
  write_u64(out, count);
  out.close();
  TKF_CHECK(out, "lm corpus: write error in '", temporary.path().string(), "'");
  temporary.rename_to(target);
}

}  // namespace

TokenCache::TokenCache(const std::filesystem::path& source, const Tokenizer& tokenizer,
                       std::int32_t eos_id, const std::filesystem::path& cache_dir) {
  TKF_CHECK(eos_id >= 0 && eos_id < tokenizer.vocab_size(), "lm corpus: eos id ", eos_id,
            " is outside the vocabulary [0, ", tokenizer.vocab_size(), ")");
  const CacheIdentity identity = cache_identity(source, tokenizer, eos_id);
  std::error_code error;
  std::filesystem::create_directories(cache_dir, error);
  TKF_CHECK(!error, "lm corpus: cannot create the cache folder '", cache_dir.string(),
            "': ", error.message());
  path_ = cache_dir / identity.name;
  if (map_if_current(identity.header, tokenizer.vocab_size())) return;
  write_cache(source, tokenizer, eos_id, identity.header, path_);
  built_ = true;
  TKF_CHECK(map_if_current(identity.header, tokenizer.vocab_size()), "lm corpus: the cache '",
            path_.string(), "' just written does not read back");
}

TokenCache::TokenCache(TokenCache&& other) noexcept
    : path_(std::move(other.path_)),
      mapping_(std::exchange(other.mapping_, nullptr)),
      mapping_bytes_(std::exchange(other.mapping_bytes_, 0)),
      ids_(std::exchange(other.ids_, {})),
      built_(other.built_) {}

TokenCache& TokenCache::operator=(TokenCache&& other) noexcept {
  if (this != &other) {
    unmap();
    path_ = std::move(other.path_);
    mapping_ = std::exchange(other.mapping_, nullptr);
    mapping_bytes_ = std::exchange(other.mapping_bytes_, 0);
    ids_ = std::exchange(other.ids_, {});
    built_ = other.built_;
  }
  return *this;
}

TokenCache::~TokenCache() {
  unmap();
}

void TokenCache::unmap() noexcept {
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_bytes_);
  mapping_ = nullptr;
  mapping_bytes_ = 0;
  ids_ = {};
}

bool TokenCache::map_if_current(const std::string& header, std::int64_t vocab_size) {
  const int file = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (file < 0) return false;
  struct stat status {};
  const bool sized = ::fstat(file, &status) == 0 && status.st_size > 0;
  void* mapping = sized ? ::mmap(nullptr, static_cast<std::size_t>(status.st_size), PROT_READ,
                                 MAP_SHARED, file, 0)
                        : MAP_FAILED;
  ::close(file);  // the mapping keeps the file open
  if (mapping == MAP_FAILED) return false;
  mapping_ = mapping;
  mapping_bytes_ = static_cast<std::size_t>(status.st_size);

  // A cache of another source, tokenizer or eos id, or one cut short, is stale.
  const char* bytes = static_cast<const char*>(mapping_);
  std::uint64_t count = 0;
  std::uint64_t header_bytes = 0;
  bool current = mapping_bytes_ >= prelude_bytes &&
                 std::memcmp(bytes, cache_magic.data(), cache_magic.size()) == 0;
  if (current) {
    std::memcpy(&count, bytes + cache_magic.size(), sizeof count);
    std::memcpy(&header_bytes, bytes + cache_magic.size() + sizeof count, sizeof header_bytes);
    current = header_bytes == header.size() && prelude_bytes + header_bytes <= mapping_bytes_ &&
              std::string_view(bytes + prelude_bytes, header_bytes) == header && count > 0 &&
              mapping_bytes_ == ids_offset(header_bytes) + count * sizeof(std::uint32_t);
  }
  if (!current) {
    unmap();
    return false;
  }
  ids_ = {reinterpret_cast<const std::uint32_t*>(bytes + ids_offset(header_bytes)),
          static_cast<std::size_t>(count)};
  // A current header over damaged ids would fail much later, in the
  // embedding's gather_rows, naming neither this file nor the position.
  const auto bad = std::find_if(ids_.begin(), ids_.end(), [vocab_size](std::uint32_t id) {
    return std::int64_t{id} >= vocab_size;
  });
  if (bad != ids_.end()) {
    const std::uint32_t id = *bad;
    const auto position = bad - ids_.begin();
    unmap();
    throw Error(detail::concat("lm corpus: the token cache '", path_.string(), "' is corrupt: id ",
                               id, " at position ", position, " is outside the vocabulary [0, ",
                               vocab_size, "); delete the file to have it rebuilt"));
  }
  return true;
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
