#include "train/file_io.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <utility>

#include "topkformer/core/error.h"

namespace topkformer::train::detail {

void Fnv1a64::update(const void* bytes, std::size_t count) {
  constexpr std::uint64_t prime = 0x100000001b3ull;
  const auto* byte = static_cast<const unsigned char*>(bytes);
  std::uint64_t state = state_;
  for (std::size_t i = 0; i < count; ++i) state = (state ^ byte[i]) * prime;
  state_ = state;
}

std::uint64_t fnv1a64(const void* bytes, std::size_t count) {
  Fnv1a64 hash;
  hash.update(bytes, count);
  return hash.value();
}

std::string hex64(std::uint64_t value) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string text(16, '0');
  for (int i = 15; i >= 0; --i, value >>= 4) text[static_cast<std::size_t>(i)] = digits[value & 15];
  return text;
}

namespace {
// "cannot <what> '<path>': <the errno message>", read before anything else can change errno.
Error os_error(const char* what, const std::filesystem::path& path) {
  const int code = errno;
  return Error(std::string("cannot ") + what + " '" + path.string() + "': " + std::strerror(code));
}
}  // namespace

SyncedFile::SyncedFile(std::filesystem::path path, Mode mode) : path_(std::move(path)) {
  const int position = mode == Mode::append ? O_APPEND : O_TRUNC;
  descriptor_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | position | O_CLOEXEC, 0644);
  if (descriptor_ < 0) throw os_error("create", path_);
}

SyncedFile::~SyncedFile() {
  if (descriptor_ >= 0) ::close(descriptor_);
}

void SyncedFile::write(const void* bytes, std::size_t count) {
  TKF_CHECK(descriptor_ >= 0, "SyncedFile: '", path_.string(), "' is closed");
  const auto* next = static_cast<const char*>(bytes);
  // write() may take less than asked (large counts, signals): loop until done.
  while (count > 0) {
    const ::ssize_t written = ::write(descriptor_, next, count);
    if (written < 0) {
      if (errno == EINTR) continue;
      throw os_error("write", path_);
    }
    next += written;
    count -= static_cast<std::size_t>(written);
  }
}

void SyncedFile::sync_and_close() {
  TKF_CHECK(descriptor_ >= 0, "SyncedFile: '", path_.string(), "' is closed");
  if (::fsync(descriptor_) != 0) throw os_error("flush (fsync)", path_);
  const int descriptor = std::exchange(descriptor_, -1);
  // close() can report a deferred write error (e.g. on network file systems).
  if (::close(descriptor) != 0) throw os_error("close", path_);
}

void write_file_synced(const std::filesystem::path& path, std::string_view bytes) {
  SyncedFile file(path);
  file.write(bytes.data(), bytes.size());
  file.sync_and_close();
}

void write_file_atomically(const std::filesystem::path& path, std::string_view bytes) {
  const std::filesystem::path temporary = path.string() + ".tmp";
  write_file_synced(temporary, bytes);
  std::filesystem::rename(temporary, path);
}

std::string read_file(const std::filesystem::path& path) {
  // A folder opens as a stream too, and the first read then threw
  // "basic_filebuf::underflow", which names neither the file nor the problem.
  std::error_code error;
  const std::filesystem::file_status status = std::filesystem::status(path, error);
  if (!error && status.type() != std::filesystem::file_type::regular) {
    throw Error(
        "cannot read '" + path.string() + "': it is not a regular file" +
        (status.type() == std::filesystem::file_type::directory ? " (it is a folder)" : ""));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw os_error("open", path);
  std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) throw os_error("read", path);
  return bytes;
}

std::optional<std::string> read_at_most(std::istream& in, std::uintmax_t max_bytes) {
  std::string bytes;
  char buffer[1 << 16];
  while (in) {
    // One byte past max_bytes tells "exactly max_bytes" from "more".
    const std::uintmax_t left = max_bytes - bytes.size();
    const std::uintmax_t wanted = left < sizeof buffer ? left + 1 : sizeof buffer;
    in.read(buffer, static_cast<std::streamsize>(wanted));
    bytes.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (bytes.size() > max_bytes) return std::nullopt;
  }
  return bytes;
}

void sync_directory(const std::filesystem::path& path) {
  const int descriptor = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (descriptor < 0) throw os_error("open the folder", path);
  if (::fsync(descriptor) != 0) {
    const Error error = os_error("flush (fsync) the folder", path);
    ::close(descriptor);
    throw error;
  }
  ::close(descriptor);
}

RunDirectoryLock::RunDirectoryLock(const std::filesystem::path& run_dir) {
  const std::filesystem::path path = run_dir / ".lock";
  descriptor_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (descriptor_ < 0) throw os_error("open the lock file", path);
  if (::flock(descriptor_, LOCK_EX | LOCK_NB) != 0) {
    const int code = errno;
    std::string holder;
    if (code == EWOULDBLOCK) {
      char text[256] = {};
      const ::ssize_t count = ::pread(descriptor_, text, sizeof text - 1, 0);
      if (count > 0) holder = std::string(text, std::size_t(count));
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    }
    ::close(descriptor_);
    descriptor_ = -1;
    if (code != EWOULDBLOCK) {
      errno = code;
      throw os_error("lock", path);
    }
    throw Error(run_dir.string() + " is in use by another trainer (" +
                (holder.empty() ? std::string("unknown process") : holder) +
                "): wait for it to finish or stop it, or choose another --run-dir");
  }
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  const std::string holder = "pid " + std::to_string(::getpid()) + " on " + host + "\n";
  // The holder's description is informative only: a failed write does not matter.
  if (::ftruncate(descriptor_, 0) == 0) {
    [[maybe_unused]] const ::ssize_t ignored =
        ::pwrite(descriptor_, holder.data(), holder.size(), 0);
  }
}

RunDirectoryLock::~RunDirectoryLock() {
  if (descriptor_ >= 0) ::close(descriptor_);  // closing releases the flock
}

}  // namespace topkformer::train::detail
