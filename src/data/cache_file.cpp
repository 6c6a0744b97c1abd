#include "data/cache_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <system_error>
#include <utility>

#include "topkformer/core/error.h"

namespace topkformer::data {
namespace {

constexpr std::size_t prelude_bytes = sizeof(CacheMagic) + 2 * sizeof(std::uint64_t);

std::size_t payload_offset(std::size_t header_bytes) {
  return (prelude_bytes + header_bytes + 7) / 8 * 8;
}

}  // namespace

CacheIdentity cache_identity(const std::filesystem::path& source, nlohmann::json encoding,
                             const std::filesystem::path& cache_dir, std::string_view extension,
                             std::string_view what) {
  const auto unreadable = [&](const std::string& why) {
    return Error(detail::concat(what, ": cannot read '", source.string(), "': ", why));
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
  std::filesystem::create_directories(cache_dir, error);
  TKF_CHECK(!error, what, ": cannot create the cache folder '", cache_dir.string(),
            "': ", error.message());

  encoding["source"] = absolute.string();
  // A path need not be UTF-8: its invalid bytes become U+FFFD rather than an exception.
  const auto text = [&encoding] {
    return encoding.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  const std::string name = detail::concat(source.filename().string(), ".",
                                          std::hash<std::string>{}(text()), ".", extension);
  encoding["source_bytes"] = bytes;
  encoding["source_modified"] = modified.time_since_epoch().count();
  return {cache_dir / name, text()};
}

CacheWriter::CacheWriter(const CacheIdentity& identity, const CacheMagic& magic,
                         std::string_view what)
    : path_(identity.path),
      // The process id keeps ranks that build the same cache at once apart.
      temporary_(identity.path.string() + ".tmp-" + std::to_string(::getpid())),
      what_(what),
      out_(temporary_, std::ios::binary | std::ios::trunc) {
  TKF_CHECK(out_, what_, ": cannot write '", temporary_.string(), "'");
  const std::string& header = identity.header;
  const std::uint64_t count = 0, header_bytes = header.size();  // the count is filled in later
  out_.write(magic.data(), magic.size());
  out_.write(reinterpret_cast<const char*>(&count), sizeof count);
  out_.write(reinterpret_cast<const char*>(&header_bytes), sizeof header_bytes);
  out_.write(header.data(), static_cast<std::streamsize>(header.size()));
  const std::string padding(payload_offset(header.size()) - prelude_bytes - header.size(), '\0');
  out_.write(padding.data(), static_cast<std::streamsize>(padding.size()));
}

CacheWriter::~CacheWriter() {
  if (committed_) return;
  out_.close();
  std::error_code ignored;
  std::filesystem::remove(temporary_, ignored);
}

void CacheWriter::write_bytes(const void* data, std::size_t bytes) {
  out_.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  payload_bytes_ += bytes;
}

void CacheWriter::align(std::size_t alignment) {
  const std::string zeros((alignment - payload_bytes_ % alignment) % alignment, '\0');
  write_bytes(zeros.data(), zeros.size());
}

void CacheWriter::commit(std::uint64_t count) {
  out_.seekp(static_cast<std::streamoff>(sizeof(CacheMagic)));
  out_.write(reinterpret_cast<const char*>(&count), sizeof count);
  out_.close();
  TKF_CHECK(out_, what_, ": write error in '", temporary_.string(), "'");
  std::error_code error;
  std::filesystem::rename(temporary_, path_, error);
  TKF_CHECK(!error, what_, ": cannot rename '", temporary_.string(), "' to '", path_.string(),
            "': ", error.message());
  committed_ = true;
}

MappedCache::MappedCache(const std::filesystem::path& path, const CacheMagic& magic,
                         const std::string& header) {
  const int file = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (file < 0) return;
  struct stat status {};
  const bool sized = ::fstat(file, &status) == 0 && status.st_size > 0;
  void* mapping = sized ? ::mmap(nullptr, static_cast<std::size_t>(status.st_size), PROT_READ,
                                 MAP_SHARED, file, 0)
                        : MAP_FAILED;
  ::close(file);  // the mapping keeps the file open
  if (mapping == MAP_FAILED) return;
  mapping_ = mapping;
  mapping_bytes_ = static_cast<std::size_t>(status.st_size);

  const char* bytes = static_cast<const char*>(mapping_);
  std::uint64_t header_bytes = 0;
  bool current =
      mapping_bytes_ >= prelude_bytes && std::memcmp(bytes, magic.data(), magic.size()) == 0;
  if (current) {
    std::memcpy(&count_, bytes + magic.size(), sizeof count_);
    std::memcpy(&header_bytes, bytes + magic.size() + sizeof count_, sizeof header_bytes);
    current = header_bytes == header.size() && payload_offset(header_bytes) <= mapping_bytes_ &&
              std::string_view(bytes + prelude_bytes, header_bytes) == header;
  }
  if (!current) {
    unmap();
    return;
  }
  const std::size_t offset = payload_offset(header_bytes);
  payload_ = {reinterpret_cast<const std::byte*>(bytes) + offset, mapping_bytes_ - offset};
}

MappedCache::MappedCache(MappedCache&& other) noexcept
    : mapping_(std::exchange(other.mapping_, nullptr)),
      mapping_bytes_(std::exchange(other.mapping_bytes_, 0)),
      count_(std::exchange(other.count_, 0)),
      payload_(std::exchange(other.payload_, {})) {}

MappedCache& MappedCache::operator=(MappedCache&& other) noexcept {
  if (this != &other) {
    unmap();
    mapping_ = std::exchange(other.mapping_, nullptr);
    mapping_bytes_ = std::exchange(other.mapping_bytes_, 0);
    count_ = std::exchange(other.count_, 0);
    payload_ = std::exchange(other.payload_, {});
  }
  return *this;
}

MappedCache::~MappedCache() {
  unmap();
}

void MappedCache::unmap() noexcept {
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_bytes_);
  mapping_ = nullptr;
  mapping_bytes_ = 0;
  count_ = 0;
  payload_ = {};
}

void MappedCache::release_pages(std::span<const std::byte> part) const {
  // madvise wants whole pages: the partial pages at the ends go too, which
  // costs only reading them again.
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<std::uintptr_t>(part.data()) / page * page;
  const auto end = reinterpret_cast<std::uintptr_t>(part.data() + part.size());
  // Advice only: where the kernel declines, the pages simply stay.
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

void throw_corrupt_cache(std::string_view what, const std::filesystem::path& path,
                         const std::string& damage) {
  throw Error(detail::concat(what, ": the token cache '", path.string(), "' is corrupt: ", damage,
                             "; delete the file to have it rebuilt"));
}

}  // namespace topkformer::data
