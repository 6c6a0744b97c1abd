// The safetensors file format (https://huggingface.co/docs/safetensors), with
// a checksum of every tensor and of the header in `__metadata__`.
// See Note [safetensors checksums].
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "topkformer/nn/module.h"

// Note [safetensors checksums]
// The format every safetensors reader opens: an 8-byte little-endian header
// size, a JSON header mapping each tensor name to {dtype, shape,
// data_offsets} plus a `__metadata__` map of strings, then the raw
// little-endian data. Our writer adds to `__metadata__` the framework version
// and a checksum of every tensor's bytes and of the header itself, so the
// reader detects a corrupt file (any changed byte) and names the tensor that
// is damaged. docs/checkpoints.md describes the layout and the checksum.

namespace topkformer::train {

using Metadata = std::map<std::string, std::string>;

// Writes `tensors` (any device; contiguous or not) in the given order to
// `path` and flushes it to disk (fsync) before returning. `metadata` is added
// to the header beside the version and checksums (whose keys it may not use:
// topkformer_version, checksum_algorithm, header_checksum, checksum:*).
// Names must be unique, non-empty UTF-8 and not `__metadata__`.
void write_safetensors(const std::filesystem::path& path, const nn::NamedTensors& tensors,
                       const Metadata& metadata = {});

struct SafetensorsFile {
  nn::NamedTensors tensors;  // CPU tensors, in file order
  Metadata metadata;
};

// Reads and verifies a file: header size, JSON, dtypes, shapes, offsets that
// tile the data section, and the checksums. Files from other writers (no
// topkformer keys in `__metadata__`) are read without checksums; a file with
// any of our keys must have all of them. Every failure is an Error naming the
// file and, where it is about one tensor, the tensor. `metadata` is all of
// `__metadata__`, checksums included.
SafetensorsFile read_safetensors(const std::filesystem::path& path);

// Copies the tensors of `file` (read from `path`, which errors name) into
// `targets` by name. Every target must be in the file with the same dtype and
// shape (an Error naming the file and the tensor otherwise); tensors of the
// file that no target asks for are an error unless `allow_unused`. Everything
// is checked before anything is copied: on an error no target has changed.
void copy_into(const SafetensorsFile& file, const std::filesystem::path& path,
               const nn::NamedTensors& targets, bool allow_unused = false);
// The checks of copy_into alone (throws the same errors, copies nothing), so
// that a caller loading several files can check all before changing any.
void check_copy_into(const SafetensorsFile& file, const std::filesystem::path& path,
                     const nn::NamedTensors& targets, bool allow_unused = false);

}  // namespace topkformer::train
