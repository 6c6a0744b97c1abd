#include "topkformer/train/checkpoint.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <system_error>
#include <utility>
#include <vector>

#include "file_io.h"
#include "topkformer/core/error.h"
#include "topkformer/core/runtime.h"
#include "topkformer/train/safetensors.h"
#include "training_state_yaml.h"

namespace topkformer::train {
namespace {

namespace fs = std::filesystem;

constexpr const char* model_file = "model.safetensors";
constexpr const char* optimizer_file = "optimizer.safetensors";
constexpr const char* state_file = "state.yaml";
constexpr const char* config_file = "config.yaml";
// Everything a save creates besides step_* starts with this: latest_checkpoint
// never looks at it and prune_checkpoints deletes it (a crash left it).
constexpr std::string_view temporary_prefix = ".tmp-";
// model.safetensors metadata holding the checksums of the two YAML files, so
// that verifying a checkpoint covers every byte of it.
const std::string state_checksum_key = std::string("file_checksum:") + state_file;
const std::string config_checksum_key = std::string("file_checksum:") + config_file;

// The step of a folder named step_<digits>; nullopt for anything else.
std::optional<std::int64_t> checkpoint_step(const std::string& name) {
  constexpr std::string_view prefix = "step_";
  if (!name.starts_with(prefix) || name.size() == prefix.size()) return std::nullopt;
  const char* first = name.data() + prefix.size();
  const char* last = name.data() + name.size();
  if (!std::all_of(first, last, [](char c) { return c >= '0' && c <= '9'; })) return std::nullopt;
  std::int64_t step = 0;
  if (std::from_chars(first, last, step).ec != std::errc{}) return std::nullopt;  // too large
  return step;
}

// step_* folders of `dir`, newest first.
std::vector<std::pair<std::int64_t, fs::path>> list_checkpoints(const fs::path& dir) {
  std::vector<std::pair<std::int64_t, fs::path>> found;
  std::error_code error;
  if (!fs::is_directory(dir, error)) return found;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    const std::optional<std::int64_t> step = checkpoint_step(entry.path().filename().string());
    if (step && entry.is_directory()) found.emplace_back(*step, entry.path());
  }
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  return found;
}

// Throws naming the tensor when a floating-point tensor holds NaN or Inf.
template <typename T>
void check_finite_values(const Tensor& host, const std::string& what, const std::string& name) {
  const T* values = host.data<T>();
  for (std::int64_t i = 0; i < host.numel(); ++i) {
    TKF_CHECK(std::isfinite(values[i]), "checkpoint: ", what, " tensor '", name, "' holds ",
              values[i], " (element ", i, "); the checkpoint was not written");
  }
}

void check_finite(const nn::NamedTensors& tensors, const std::string& what) {
  for (const auto& [name, tensor] : tensors) {
    TKF_CHECK(tensor.defined(), "checkpoint: ", what, " tensor '", name, "' is undefined");
    if (!is_floating(tensor.dtype())) continue;
    const Tensor host = tensor.to(Device::cpu()).contiguous();
    if (host.dtype() == DType::f32) {
      check_finite_values<float>(host, what, name);
    } else {
      check_finite_values<double>(host, what, name);
    }
  }
}

// A folder that is deleted on destruction unless committed: an exception
// during a save (disk full, a failing test hook) leaves nothing behind. After a
// crash it stays, and prune_checkpoints deletes it.
class TemporaryFolder {
 public:
  explicit TemporaryFolder(fs::path path) : path_(std::move(path)) {
    std::error_code error;
    fs::remove_all(path_, error);
    fs::create_directories(path_, error);
    TKF_CHECK(!error, "checkpoint: cannot create '", path_.string(), "': ", error.message());
  }
  TemporaryFolder(const TemporaryFolder&) = delete;
  TemporaryFolder& operator=(const TemporaryFolder&) = delete;
  ~TemporaryFolder() {
    std::error_code ignored;
    if (!committed_) fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }
  void commit() { committed_ = true; }

 private:
  fs::path path_;
  bool committed_ = false;
};

void rename_or_throw(const fs::path& from, const fs::path& to) {
  std::error_code error;
  fs::rename(from, to, error);
  TKF_CHECK(!error, "checkpoint: cannot rename '", from.string(), "' to '", to.string(),
            "': ", error.message());
}

// Every file of a checkpoint, read and verified.
struct VerifiedCheckpoint {
  TrainingState state;
  SafetensorsFile model, optimizer;
};

// The bytes of a YAML file of the checkpoint, checked against the checksum
// that model.safetensors holds for it.
std::string read_checked(const fs::path& dir, const char* file, const std::string& key,
                         const Metadata& model_metadata) {
  const fs::path path = dir / file;
  const std::string bytes = detail::read_file(path);
  const auto stored = model_metadata.find(key);
  TKF_CHECK(stored != model_metadata.end(), (dir / model_file).string(), ": metadata '", key,
            "' is missing");
  TKF_CHECK(detail::hex64(detail::fnv1a64(bytes.data(), bytes.size())) == stored->second,
            path.string(), ": checksum mismatch (file is corrupt or was edited)");
  return bytes;
}

VerifiedCheckpoint read_verified(const fs::path& dir) {
  TKF_CHECK(fs::is_directory(dir), "checkpoint: '", dir.string(), "' is not a folder");
  VerifiedCheckpoint result;
  result.model = read_safetensors(dir / model_file);
  result.optimizer = read_safetensors(dir / optimizer_file);
  read_checked(dir, config_file, config_checksum_key, result.model.metadata);
  const fs::path state_path = dir / state_file;
  result.state = detail::parse_training_state(
      read_checked(dir, state_file, state_checksum_key, result.model.metadata),
      state_path.string());
  const std::optional<std::int64_t> step = checkpoint_step(dir.filename().string());
  TKF_CHECK(!step || *step == result.state.step, state_path.string(), ": step ", result.state.step,
            ", but the folder is ", dir.filename().string());
  return result;
}

}  // namespace

std::string checkpoint_name(std::int64_t step) {
  TKF_CHECK(step >= 0, "checkpoint: negative step ", step);
  char digits[32];
  std::snprintf(digits, sizeof digits, "%07lld", static_cast<long long>(step));
  return std::string("step_") + digits;
}

fs::path write_checkpoint(const fs::path& checkpoints_dir, const CheckpointContents& contents,
                          const std::function<void(const std::string& file)>& after_file) {
  const std::string name = checkpoint_name(contents.state.step);
  // A diverged run must not replace good checkpoints with NaNs: check first.
  check_finite(contents.model, "model");
  check_finite(contents.optimizer, "optimizer");

  std::error_code error;
  fs::create_directories(checkpoints_dir, error);
  TKF_CHECK(!error, "checkpoint: cannot create '", checkpoints_dir.string(),
            "': ", error.message());
  const std::string pid = std::to_string(::getpid());
  TemporaryFolder temporary(checkpoints_dir / (std::string(temporary_prefix) + name + "-" + pid));
  const auto done = [&after_file](const std::string& file) {
    if (after_file) after_file(file);
  };

  TrainingState state = contents.state;
  if (state.version.empty()) state.version = version();
  const std::string state_yaml = detail::training_state_yaml(state);
  detail::write_file_synced(temporary.path() / state_file, state_yaml);
  done(state_file);
  detail::write_file_synced(temporary.path() / config_file, contents.config_yaml);
  done(config_file);
  const Metadata model_metadata = {
      {"step", std::to_string(contents.state.step)},
      {state_checksum_key, detail::hex64(detail::fnv1a64(state_yaml.data(), state_yaml.size()))},
      {config_checksum_key,
       detail::hex64(detail::fnv1a64(contents.config_yaml.data(), contents.config_yaml.size()))}};
  write_safetensors(temporary.path() / model_file, contents.model, model_metadata);
  done(model_file);
  write_safetensors(temporary.path() / optimizer_file, contents.optimizer,
                    {{"step", std::to_string(contents.state.step)}});
  done(optimizer_file);
  detail::sync_directory(temporary.path());

  // Replacing a checkpoint of the same step (a resumed run saving again):
  // move the old one aside first, so a step_* folder is never half deleted.
  const fs::path target = checkpoints_dir / name;
  const fs::path replaced =
      checkpoints_dir / (std::string(temporary_prefix) + "replaced-" + name + "-" + pid);
  const bool replacing = fs::exists(fs::symlink_status(target));
  if (replacing) {
    fs::remove_all(replaced, error);
    rename_or_throw(target, replaced);
  }
  rename_or_throw(temporary.path(), target);
  temporary.commit();
  if (replacing) fs::remove_all(replaced, error);
  detail::sync_directory(checkpoints_dir);
  return target;
}

TrainingState load_checkpoint(const fs::path& checkpoint_dir, const nn::NamedTensors& model,
                              const nn::NamedTensors& optimizer) {
  const VerifiedCheckpoint checkpoint = read_verified(checkpoint_dir);
  const fs::path model_path = checkpoint_dir / model_file;
  const fs::path optimizer_path = checkpoint_dir / optimizer_file;
  // The model file may hold tensors nobody asks for (e.g. buffers a model no
  // longer registers); every requested one must be there. Optimizer state must
  // match exactly. Both are checked before either is copied.
  check_copy_into(checkpoint.model, model_path, model, /*allow_unused=*/true);
  check_copy_into(checkpoint.optimizer, optimizer_path, optimizer, /*allow_unused=*/false);
  copy_into(checkpoint.model, model_path, model, /*allow_unused=*/true);
  copy_into(checkpoint.optimizer, optimizer_path, optimizer, /*allow_unused=*/false);
  return checkpoint.state;
}

TrainingState read_training_state(const fs::path& checkpoint_dir) {
  const fs::path path = checkpoint_dir / state_file;
  return detail::parse_training_state(detail::read_file(path), path.string());
}

bool verify_checkpoint(const fs::path& checkpoint_dir, std::string* why) {
  try {
    read_verified(checkpoint_dir);
    return true;
  } catch (const std::exception& error) {  // Error, filesystem errors, bad_alloc of a bad size
    if (why != nullptr) *why = error.what();
    return false;
  }
}

std::optional<fs::path> latest_checkpoint(const fs::path& checkpoints_dir) {
  for (const auto& [step, path] : list_checkpoints(checkpoints_dir)) {
    std::string why;
    if (verify_checkpoint(path, &why)) return path;
    spdlog::warn("checkpoint '{}' is damaged and skipped: {}", path.string(), why);
  }
  return std::nullopt;
}

void prune_checkpoints(const fs::path& checkpoints_dir, std::int64_t keep_last,
                       std::int64_t keep_step, std::int64_t saved_step,
                       const std::function<void(const fs::path& doomed)>& before_delete) {
  std::error_code error;
  if (!fs::is_directory(checkpoints_dir, error)) return;
  std::vector<fs::path> doomed;
  for (const fs::directory_entry& entry : fs::directory_iterator(checkpoints_dir))
    if (entry.path().filename().string().starts_with(temporary_prefix))
      doomed.push_back(entry.path());
  if (keep_last > 0) {
    // Only checkpoints that verify count towards keep_last: damaged ones must
    // never crowd out a good one (the one just saved least of all). A damaged
    // one newer than the oldest kept stays for inspection; older ones go.
    std::int64_t kept = 0;
    for (const auto& [step, path] : list_checkpoints(checkpoints_dir)) {
      if (kept >= keep_last) {
        if (step != keep_step) doomed.push_back(path);
      } else if (std::string why; step == saved_step || verify_checkpoint(path, &why)) {
        ++kept;
      } else {
        spdlog::warn("checkpoint '{}' is damaged and does not count towards train.keep_last: {}",
                     path.string(), why);
      }
    }
  }
  // A step_* folder is renamed out of the way before it is deleted, so a
  // process killed while deleting never leaves a half-deleted step_* folder
  // (the .tmp- remnant goes at the next prune).
  const std::string pid = std::to_string(::getpid());
  for (const fs::path& path : doomed) {
    fs::path target = path;
    if (!path.filename().string().starts_with(temporary_prefix)) {
      target = checkpoints_dir /
               (std::string(temporary_prefix) + "pruned-" + path.filename().string() + "-" + pid);
      rename_or_throw(path, target);
    }
    if (before_delete) before_delete(target);
    fs::remove_all(target, error);
    TKF_CHECK(!error, "checkpoint: cannot delete '", target.string(), "': ", error.message());
  }
  if (!doomed.empty()) detail::sync_directory(checkpoints_dir);
}

void mark_best_checkpoint(const fs::path& checkpoints_dir, std::int64_t step) {
  const std::string name = checkpoint_name(step);
  TKF_CHECK(fs::is_directory(checkpoints_dir / name), "checkpoint: cannot mark '",
            (checkpoints_dir / name).string(), "' as the best: no such checkpoint");
  // rename() over the old link swaps it atomically: `best` always exists and
  // points at a complete checkpoint. The target is relative, so the run folder
  // can be moved.
  const fs::path link =
      checkpoints_dir / (std::string(temporary_prefix) + "best-" + std::to_string(::getpid()));
  std::error_code error;
  fs::remove(link, error);
  fs::create_directory_symlink(name, link, error);
  TKF_CHECK(!error, "checkpoint: cannot create the link '", link.string(), "': ", error.message());
  try {
    rename_or_throw(link, checkpoints_dir / "best");
  } catch (...) {
    fs::remove(link, error);
    throw;
  }
  detail::sync_directory(checkpoints_dir);
}

}  // namespace topkformer::train
