// Durable file output, the checksum shared by the safetensors and checkpoint
// code, and the run directory's lock (private to src/train).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <istream>
#include <optional>
#include <string>
#include <string_view>

namespace topkformer::train::detail {

// FNV-1a, 64 bits (docs/checkpoints.md says why this hash). Feeding the bytes
// in pieces gives the same value as feeding them at once.
class Fnv1a64 {
 public:
  static constexpr std::string_view name = "fnv1a64";
  void update(const void* bytes, std::size_t count);
  std::uint64_t value() const { return state_; }

 private:
  std::uint64_t state_ = 0xcbf29ce484222325ull;  // the FNV-1 64-bit offset basis
};

std::uint64_t fnv1a64(const void* bytes, std::size_t count);
// 16 lowercase hex digits, zero padded: the form stored in files and compared
// byte for byte (so a flipped case bit in a digit is caught too).
std::string hex64(std::uint64_t value);

// A file written with POSIX calls so that sync_and_close() really reaches the
// disk (fsync) before a checkpoint is renamed into place, and every failed
// write (a full disk) throws. Errors name the path. A file not closed by
// sync_and_close() is closed (not synced) on destruction.
class SyncedFile {
 public:
  enum class Mode { truncate, append };
  explicit SyncedFile(std::filesystem::path path, Mode mode = Mode::truncate);  // creates it
  SyncedFile(const SyncedFile&) = delete;
  SyncedFile& operator=(const SyncedFile&) = delete;
  ~SyncedFile();

  void write(const void* bytes, std::size_t count);
  void sync_and_close();

 private:
  std::filesystem::path path_;
  int descriptor_ = -1;
};

// Writes `bytes` to `path` and fsyncs it.
void write_file_synced(const std::filesystem::path& path, std::string_view bytes);
// Replaces `path` with `bytes` through a synced temporary file renamed into
// place: a full disk or a kill leaves the old file, never a truncated one.
void write_file_atomically(const std::filesystem::path& path, std::string_view bytes);
// Reads a whole (small) regular file; errors name the path. A folder, device
// or pipe is refused as "not a regular file".
std::string read_file(const std::filesystem::path& path);
// Reads `in` to its end unless it holds more than max_bytes (then nothing):
// at most max_bytes + 1 bytes are read, so a stream without end such as
// /dev/zero cannot fill memory. A read error sets in's badbit.
std::optional<std::string> read_at_most(std::istream& in, std::uintmax_t max_bytes);
// fsync on a folder: makes the creation, renaming and deletion of its entries durable.
void sync_directory(const std::filesystem::path& path);

// An exclusive flock(2) on RUN/.lock for as long as it lives: one trainer per
// run directory. The kernel drops the lock when its process dies, so a lock
// file left by a killed trainer never blocks (it is just taken again). The
// file records the holder's pid and host for the refusal message.
class RunDirectoryLock {
 public:
  explicit RunDirectoryLock(const std::filesystem::path& run_dir);  // throws when held
  RunDirectoryLock(const RunDirectoryLock&) = delete;
  RunDirectoryLock& operator=(const RunDirectoryLock&) = delete;
  ~RunDirectoryLock();

 private:
  int descriptor_ = -1;
};

}  // namespace topkformer::train::detail
