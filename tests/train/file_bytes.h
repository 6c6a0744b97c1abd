// Helpers for the safetensors and checkpoint tests: whole files as bytes,
// tensors as bytes (for bit-exact comparisons), and an independent FNV-1a.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "topkformer/core/tensor.h"

namespace topkformer::testing {

inline std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// A tensor's elements in row-major order as raw bytes: equal strings mean
// bit-identical tensors (NaN payloads and signed zeros included).
inline std::string tensor_bytes(const Tensor& tensor) {
  const Tensor host = tensor.to(Device::cpu()).contiguous();
  if (host.nbytes() == 0) return {};
  return {static_cast<const char*>(host.raw_data()), host.nbytes()};
}

// FNV-1a 64, written here again so that the tests check the library's
// checksums against an implementation of the published algorithm.
inline std::uint64_t fnv1a64(const std::string& bytes) {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  for (const char c : bytes) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return hash;
}

}  // namespace topkformer::testing
