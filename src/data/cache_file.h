// The files that cache tokenized data (lm_corpus.h, dataset.h): named and
// headed by what they were made from, written whole or not at all, mapped.
// See Note [cache files].
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>

// Note [cache files]
// Layout: magic (8 bytes, one per format), a count (u64, the format says of
// what), the header length (u64), a JSON header, zeros up to a multiple of 8
// bytes, then the payload. The header holds the source's absolute path, size
// and modification time and the encoding (tokenizer fingerprint and whatever
// else changes the ids); a cache is used only when its header is the one the
// current source and encoding give. One whose magic, header or size is not
// as expected is stale and rebuilt; one that is current but holds values it
// cannot hold (an id outside the vocabulary) is an error naming the file, as
// that damage is the disk's or another writer's, which a rebuild would hide.

namespace topkformer::data {

using CacheMagic = std::array<char, 8>;

struct CacheIdentity {
  std::filesystem::path path;
  std::string header;
};

// The cache of `source` in `cache_dir` (created if missing):
// <source file name>.<hash of its absolute path and `encoding`>.<extension>,
// so each (source, encoding) pair has its own file. Errors begin with `what`
// and name the source when it is not a readable regular file.
CacheIdentity cache_identity(const std::filesystem::path& source, nlohmann::json encoding,
                             const std::filesystem::path& cache_dir, std::string_view extension,
                             std::string_view what);

// Writes a cache to `<path>.tmp-<pid>` and renames it over `path` in commit(),
// so that a crash never leaves a partial cache and ranks that build the same
// cache at once each rename a complete file. Destroyed before commit(), it
// removes the temporary.
class CacheWriter {
 public:
  CacheWriter(const CacheIdentity& identity, const CacheMagic& magic, std::string_view what);
  CacheWriter(const CacheWriter&) = delete;
  CacheWriter& operator=(const CacheWriter&) = delete;
  ~CacheWriter();

  template <typename T>
  void write(std::span<const T> values) {
    write_bytes(values.data(), values.size_bytes());
  }
  // Zeros up to a multiple of `alignment` bytes from the payload's start.
  void align(std::size_t alignment);
  // Fills in the prelude's count, closes and renames the file into place.
  void commit(std::uint64_t count);

 private:
  void write_bytes(const void* data, std::size_t bytes);

  std::filesystem::path path_, temporary_;
  std::string what_;
  std::ofstream out_;
  std::size_t payload_bytes_ = 0;
  bool committed_ = false;
};

// A cache file mapped read-only; empty when the file is missing or is not a
// cache of `magic` with exactly `header`.
class MappedCache {
 public:
  MappedCache(const std::filesystem::path& path, const CacheMagic& magic,
              const std::string& header);
  MappedCache(MappedCache&& other) noexcept;
  MappedCache& operator=(MappedCache&& other) noexcept;
  MappedCache(const MappedCache&) = delete;
  MappedCache& operator=(const MappedCache&) = delete;
  ~MappedCache();

  explicit operator bool() const { return mapping_ != nullptr; }
  std::uint64_t count() const { return count_; }
  std::span<const std::byte> payload() const { return payload_; }
  // Drops the pages of `part` (a view into payload()) from the process; the
  // kernel reads them again from the page cache when they are next used.
  void release_pages(std::span<const std::byte> part) const;

 private:
  void unmap() noexcept;

  void* mapping_ = nullptr;
  std::size_t mapping_bytes_ = 0;
  std::uint64_t count_ = 0;
  std::span<const std::byte> payload_;
};

// `count` values of T at `offset` bytes into `bytes`, or an empty span when
// they do not fit (a stale cache); T's alignment is the caller's layout.
template <typename T>
std::span<const T> cache_array(std::span<const std::byte> bytes, std::size_t offset,
                               std::uint64_t count) {
  if (offset > bytes.size() || count > (bytes.size() - offset) / sizeof(T)) return {};
  return {reinterpret_cast<const T*>(bytes.data() + offset), static_cast<std::size_t>(count)};
}

// The error for a current cache with damaged contents: it names the file,
// what is wrong, and says to delete it.
[[noreturn]] void throw_corrupt_cache(std::string_view what, const std::filesystem::path& path,
                                      const std::string& damage);

// Checks that every id of `cache` is in [0, vocab_size); throws naming the
// cache and the first bad id's position otherwise. The check reads the ids in
// parts of 8 MiB and drops each part's pages once read, so that it never
// holds the whole cache resident and a run then holds only the pages it uses.
template <typename Id>
void check_cached_ids(const MappedCache& cache, std::span<const Id> ids, std::int64_t vocab_size,
                      std::string_view what, const std::filesystem::path& path) {
  constexpr std::size_t part = (std::size_t{8} << 20) / sizeof(Id);
  for (std::size_t start = 0; start < ids.size(); start += part) {
    const std::span<const Id> checked = ids.subspan(start, std::min(part, ids.size() - start));
    for (std::size_t i = 0; i < checked.size(); ++i) {
      const auto id = static_cast<std::int64_t>(checked[i]);
      if (id < 0 || id >= vocab_size) {
        throw_corrupt_cache(what, path,
                            "id " + std::to_string(id) + " at position " +
                                std::to_string(start + i) + " is outside the vocabulary [0, " +
                                std::to_string(vocab_size) + ")");
      }
    }
    cache.release_pages(std::as_bytes(checked));
  }
}

}  // namespace topkformer::data
