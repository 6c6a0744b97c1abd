#include "topkformer/train/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "file_io.h"
#include "topkformer/core/error.h"
#include "topkformer/core/runtime.h"

namespace topkformer::train {
namespace {

// The format stores little-endian numbers; tensors are written as they lie in memory.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes little endian");

// ordered_json keeps the header in the order we write it (metadata, then the
// tensors in data order), which is easier to read than sorted keys.
using Json = nlohmann::ordered_json;

// A corrupt size field must not make us allocate gigabytes: the reference
// implementation refuses headers above 100 MB too.
constexpr std::uint64_t max_header_bytes = 100'000'000;

// The JSON parser recurses once per level of nesting, so a crafted header of
// 100,000 '[' overflows the stack (a crash, not an error) within the size
// limit above. Our headers nest 3 levels (the object, a tensor's entry, its
// shape), as do other writers'; deeper headers are refused before parsing.
constexpr int max_header_depth = 64;

constexpr std::string_view metadata_key = "__metadata__";
constexpr std::string_view version_key = "topkformer_version";
constexpr std::string_view algorithm_key = "checksum_algorithm";
constexpr std::string_view header_checksum_key = "header_checksum";
constexpr std::string_view checksum_prefix = "checksum:";
// The header checksum is computed over the header bytes with its own value
// replaced by this placeholder (it cannot cover itself).
const std::string header_checksum_placeholder(16, '0');

std::string checksum_key(const std::string& tensor) {
  return std::string(checksum_prefix) + tensor;
}

bool is_reserved_key(const std::string& key) {
  return key == version_key || key == algorithm_key || key == header_checksum_key ||
         key.starts_with(checksum_prefix);
}

// The exact bytes that hold the header checksum in a header we wrote
// (nlohmann's compact dump). Inside a JSON string a quote is escaped, so this
// pattern can only be the key itself.
std::string header_checksum_field(const std::string& value) {
  return "\"" + std::string(header_checksum_key) + "\":\"" + value + "\"";
}

std::string_view safetensors_dtype(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return "F32";
    case DType::f64:
      return "F64";
    case DType::i32:
      return "I32";
    case DType::i64:
      return "I64";
    case DType::u8:
      return "U8";
  }
  return "?";
}

std::optional<DType> dtype_from_safetensors(std::string_view name) {
  for (const DType dtype : {DType::f32, DType::f64, DType::i32, DType::i64, DType::u8})
    if (safetensors_dtype(dtype) == name) return dtype;
  return std::nullopt;
}

// The tensor's bytes in row-major order on the CPU: the tensor itself when it
// already is, else a copy of this one tensor (never of all of them at once).
Tensor host_contiguous(const Tensor& tensor) {
  return tensor.to(Device::cpu()).contiguous();
}

// ---- writing ----

void check_writable(const std::string& where, const nn::NamedTensors& tensors,
                    const Metadata& metadata) {
  std::set<std::string> names;
  for (const auto& [name, tensor] : tensors) {
    TKF_CHECK(!name.empty(), where, ": a tensor has an empty name");
    TKF_CHECK(name != metadata_key, where, ": a tensor may not be named '", metadata_key, "'");
    TKF_CHECK(names.insert(name).second, where, ": tensor '", name, "' is given twice");
    TKF_CHECK(tensor.defined(), where, ": tensor '", name, "' is undefined");
  }
  for (const auto& entry : metadata)
    TKF_CHECK(!is_reserved_key(entry.first), where, ": metadata key '", entry.first,
              "' is reserved for the version and checksums");
}

// The JSON header, padded with spaces to a multiple of 8 bytes, its checksum in place.
std::string make_header(const std::string& where, const nn::NamedTensors& tensors,
                        const Metadata& metadata) {
  Json entries = Json::object();
  Json meta = Json::object();
  for (const auto& [key, value] : metadata) meta[key] = value;
  meta[std::string(version_key)] = version();
  meta[std::string(algorithm_key)] = std::string(detail::Fnv1a64::name);
  meta[std::string(header_checksum_key)] = header_checksum_placeholder;
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    const Tensor host = host_contiguous(tensor);
    const std::uint64_t bytes = host.nbytes();
    meta[checksum_key(name)] = detail::hex64(detail::fnv1a64(host.raw_data(), bytes));
    entries[name] = {{"dtype", std::string(safetensors_dtype(tensor.dtype()))},
                     {"shape", tensor.shape()},
                     {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  Json header = Json::object();
  header[std::string(metadata_key)] = std::move(meta);
  for (auto& [name, entry] : entries.items()) header[name] = std::move(entry);

  std::string text;
  try {
    text = header.dump();
  } catch (const Json::exception& error) {  // a name or value that is not UTF-8
    throw Error(where + ": cannot write the header: " + error.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // as the reference writer pads

  const std::string field = header_checksum_field(header_checksum_placeholder);
  const std::size_t at = text.find(field);
  TKF_CHECK(at != std::string::npos && text.rfind(field) == at, where,
            ": internal error: the header checksum field is not unique");
  const std::string checksum = detail::hex64(detail::fnv1a64(text.data(), text.size()));
  text.replace(at, field.size(), header_checksum_field(checksum));
  return text;
}

// ---- reading ----

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  std::uint64_t begin, end;
};

std::uint64_t read_size_field(std::ifstream& in) {
  unsigned char bytes[8];
  in.read(reinterpret_cast<char*>(bytes), sizeof bytes);
  std::uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | bytes[i];
  return value;
}

// Refuses JSON text whose arrays and objects nest deeper than
// max_header_depth, counting the brackets outside strings.
void check_header_depth(const std::string& where, std::string_view text) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t at = 0; at < text.size(); ++at) {
    const char c = text[at];
    if (in_string) {
      if (c == '\\') {
        ++at;  // the escaped character, a quote included, stays in the string
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      TKF_CHECK(++depth <= max_header_depth, where, ": the header's arrays and objects are ",
                "nested deeper than ", max_header_depth, " levels (at byte ", at,
                " of the header; a safetensors header needs 3): the file is corrupt or not ",
                "a safetensors file");
    } else if (c == ']' || c == '}') {
      --depth;  // unbalanced brackets are the parser's to report
    }
  }
}

Json parse_header(const std::string& where, const std::string& text) {
  check_header_depth(where, text);
  Json header;
  try {
    header = Json::parse(text);
  } catch (const Json::parse_error& error) {
    throw Error(where + ": the header is not valid JSON: " + error.what());
  }
  TKF_CHECK(header.is_object(), where, ": the header is not a JSON object");
  return header;
}

Metadata parse_metadata(const std::string& where, const Json& header) {
  Metadata metadata;
  const auto found = header.find(metadata_key);
  if (found == header.end()) return metadata;
  TKF_CHECK(found->is_object(), where, ": '", metadata_key, "' is not an object");
  for (const auto& [key, value] : found->items()) {
    TKF_CHECK(value.is_string(), where, ": metadata '", key, "' is not a string");
    metadata[key] = value.get<std::string>();
  }
  return metadata;
}

// Our keys are all or nothing: a file with any of them is checked in full, so
// a damaged key cannot pass the file off as one without checksums.
bool has_checksums(const Metadata& metadata) {
  return std::any_of(metadata.begin(), metadata.end(),
                     [](const auto& entry) { return is_reserved_key(entry.first); });
}

void verify_header_checksum(const std::string& where, const std::string& text,
                            const Metadata& metadata) {
  const auto algorithm = metadata.find(std::string(algorithm_key));
  TKF_CHECK(algorithm != metadata.end(), where, ": metadata '", algorithm_key,
            "' is missing (file is corrupt)");
  TKF_CHECK(algorithm->second == detail::Fnv1a64::name, where, ": checksum algorithm '",
            algorithm->second, "' is not supported (only ", detail::Fnv1a64::name, ")");
  TKF_CHECK(metadata.contains(std::string(version_key)), where, ": metadata '", version_key,
            "' is missing (file is corrupt)");
  const auto stored = metadata.find(std::string(header_checksum_key));
  TKF_CHECK(stored != metadata.end(), where, ": metadata '", header_checksum_key,
            "' is missing (file is corrupt)");
  const std::string field = header_checksum_field(stored->second);
  const std::size_t at = text.find(field);
  TKF_CHECK(at != std::string::npos && text.rfind(field) == at, where,
            ": the header checksum is not where the writer puts it (file is corrupt)");
  std::string hashed = text;
  hashed.replace(at, field.size(), header_checksum_field(header_checksum_placeholder));
  TKF_CHECK(detail::hex64(detail::fnv1a64(hashed.data(), hashed.size())) == stored->second, where,
            ": header checksum mismatch (file is corrupt)");
}

std::uint64_t unsigned_value(const std::string& where, const std::string& name, const Json& value,
                             const char* what) {
  TKF_CHECK(value.is_number_unsigned(), where, ": tensor '", name, "': ", what, " holds ",
            value.dump(), ", not a non-negative integer");
  return value.get<std::uint64_t>();
}

Entry parse_entry(const std::string& where, const std::string& name, const Json& value) {
  TKF_CHECK(value.is_object(), where, ": tensor '", name, "': the entry is not an object");
  for (const auto& field : value.items())
    TKF_CHECK(field.key() == "dtype" || field.key() == "shape" || field.key() == "data_offsets",
              where, ": tensor '", name, "': unknown field '", field.key(), "'");
  TKF_CHECK(value.contains("dtype") && value.contains("shape") && value.contains("data_offsets"),
            where, ": tensor '", name, "': the entry needs dtype, shape and data_offsets");

  const Json& dtype_field = value["dtype"];
  TKF_CHECK(dtype_field.is_string(), where, ": tensor '", name, "': dtype is not a string");
  const std::optional<DType> dtype = dtype_from_safetensors(dtype_field.get<std::string>());
  TKF_CHECK(dtype.has_value(), where, ": tensor '", name, "': dtype '",
            dtype_field.get<std::string>(), "' is not supported (F32, F64, I32, I64, U8 are)");

  const Json& shape_field = value["shape"];
  TKF_CHECK(shape_field.is_array(), where, ": tensor '", name, "': shape is not an array");
  Shape shape;
  std::uint64_t bytes = dtype_size(*dtype);
  bool overflow = false;
  for (const Json& extent : shape_field) {
    const std::uint64_t size = unsigned_value(where, name, extent, "shape");
    overflow |= size > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    overflow |= __builtin_mul_overflow(bytes, size, &bytes);
    shape.push_back(static_cast<std::int64_t>(size));
  }
  TKF_CHECK(!overflow, where, ": tensor '", name, "': shape ", shape_field.dump(), " is too large");

  const Json& offsets = value["data_offsets"];
  TKF_CHECK(offsets.is_array() && offsets.size() == 2, where, ": tensor '", name,
            "': data_offsets is not a [begin, end] pair");
  const std::uint64_t begin = unsigned_value(where, name, offsets[0], "data_offsets");
  const std::uint64_t end = unsigned_value(where, name, offsets[1], "data_offsets");
  TKF_CHECK(begin <= end, where, ": tensor '", name, "': data_offsets [", begin, ", ", end,
            "] end before they begin");
  TKF_CHECK(end - begin == bytes, where, ": tensor '", name, "': shape ", shape_str(shape), " of ",
            safetensors_dtype(*dtype), " needs ", bytes, " bytes but data_offsets [", begin, ", ",
            end, "] span ", end - begin);
  return {name, *dtype, std::move(shape), begin, end};
}

// The tensors must lie back to back from the start of the data section to its
// end: no gaps, no overlaps, nothing outside it.
void check_tiling(const std::string& where, std::vector<Entry>& entries, std::uint64_t data_bytes) {
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t expected = 0;
  for (const Entry& entry : entries) {
    TKF_CHECK(entry.begin <= expected, where, ": tensor '", entry.name, "': data_offsets [",
              entry.begin, ", ", entry.end, "] leave bytes [", expected, ", ", entry.begin,
              ") of the data section unused");
    TKF_CHECK(entry.begin == expected, where, ": tensor '", entry.name, "': data_offsets [",
              entry.begin, ", ", entry.end, "] overlap the tensor before it (ending at ", expected,
              ")");
    expected = entry.end;
  }
  TKF_CHECK(expected <= data_bytes, where, ": the tensors need ", expected,
            " bytes of data but the file holds ", data_bytes, " (file is truncated)");
  TKF_CHECK(expected == data_bytes, where, ": the file holds ", data_bytes - expected,
            " bytes after the last tensor (file is longer than its header says)");
}

void check_checksum_keys(const std::string& where, const Metadata& metadata,
                         const std::vector<Entry>& entries) {
  std::set<std::string> names;
  for (const Entry& entry : entries) {
    names.insert(entry.name);
    TKF_CHECK(metadata.contains(checksum_key(entry.name)), where, ": tensor '", entry.name,
              "': no checksum in the metadata (file is corrupt)");
  }
  for (const auto& entry : metadata) {
    if (!entry.first.starts_with(checksum_prefix)) continue;
    const std::string name = entry.first.substr(checksum_prefix.size());
    TKF_CHECK(names.contains(name), where, ": metadata holds a checksum of tensor '", name,
              "', which is not in the file (file is corrupt)");
  }
}

}  // namespace

void write_safetensors(const std::filesystem::path& path, const nn::NamedTensors& tensors,
                       const Metadata& metadata) {
  const std::string where = path.string();
  check_writable(where, tensors, metadata);
  // Two passes over the tensors (checksums for the header, then the data), so
  // that at most one tensor is ever copied to contiguous host memory at a time.
  const std::string header = make_header(where, tensors, metadata);
  try {
    detail::SyncedFile file(path);
    unsigned char size_field[8];
    std::uint64_t size = header.size();
    for (unsigned char& byte : size_field) {
      byte = static_cast<unsigned char>(size & 0xff);
      size >>= 8;
    }
    file.write(size_field, sizeof size_field);
    file.write(header.data(), header.size());
    for (const auto& named : tensors) {
      const Tensor host = host_contiguous(named.second);
      if (host.nbytes() > 0) file.write(host.raw_data(), host.nbytes());
    }
    file.sync_and_close();
  } catch (...) {
    std::error_code ignored;  // no half-written file is left behind
    std::filesystem::remove(path, ignored);
    throw;
  }
}

SafetensorsFile read_safetensors(const std::filesystem::path& path) {
  const std::string where = path.string();
  std::error_code error;
  const std::uintmax_t file_bytes = std::filesystem::file_size(path, error);
  TKF_CHECK(!error, where, ": cannot read: ", error.message());
  std::ifstream in(path, std::ios::binary);
  TKF_CHECK(in, where, ": cannot open");
  TKF_CHECK(file_bytes >= 8, where, ": ", file_bytes,
            " bytes, too short for a safetensors file (8-byte header size first)");

  const std::uint64_t header_bytes = read_size_field(in);
  TKF_CHECK(header_bytes <= file_bytes - 8, where, ": header size ", header_bytes,
            " runs past the end of the file (", file_bytes, " bytes)");
  TKF_CHECK(header_bytes <= max_header_bytes, where, ": header size ", header_bytes,
            " exceeds the limit of ", max_header_bytes, " bytes");
  std::string text(header_bytes, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_bytes));
  TKF_CHECK(in, where, ": cannot read the header");

  const Json header = parse_header(where, text);
  SafetensorsFile result;
  result.metadata = parse_metadata(where, header);
  const bool checked = has_checksums(result.metadata);
  if (checked) verify_header_checksum(where, text, result.metadata);

  std::vector<Entry> entries;
  for (const auto& [name, value] : header.items())
    if (name != metadata_key) entries.push_back(parse_entry(where, name, value));
  if (checked) check_checksum_keys(where, result.metadata, entries);
  check_tiling(where, entries, file_bytes - 8 - header_bytes);

  // Straight into each tensor's storage, in data order: the file is read once.
  for (const Entry& entry : entries) {
    Tensor tensor = Tensor::empty(entry.shape, entry.dtype);
    const std::size_t bytes = entry.end - entry.begin;
    if (bytes > 0) {
      in.read(static_cast<char*>(tensor.raw_data()), static_cast<std::streamsize>(bytes));
      TKF_CHECK(in, where, ": tensor '", entry.name, "': cannot read its data");
    }
    if (checked) {
      const std::string checksum = detail::hex64(detail::fnv1a64(tensor.raw_data(), bytes));
      TKF_CHECK(checksum == result.metadata.at(checksum_key(entry.name)), where, ": tensor '",
                entry.name, "': checksum mismatch (file is corrupt)");
    }
    result.tensors.emplace_back(entry.name, std::move(tensor));
  }
  return result;
}

void check_copy_into(const SafetensorsFile& file, const std::filesystem::path& path,
                     const nn::NamedTensors& targets, bool allow_unused) {
  const std::string where = path.string();
  std::unordered_map<std::string, const Tensor*> by_name;
  for (const auto& [name, tensor] : file.tensors) by_name.emplace(name, &tensor);
  std::set<std::string> used;
  for (const auto& [name, target] : targets) {
    TKF_CHECK(target.defined(), where, ": tensor '", name, "': the target is undefined");
    const auto found = by_name.find(name);
    TKF_CHECK(found != by_name.end(), where, ": tensor '", name, "' is missing from the file");
    const Tensor& source = *found->second;
    TKF_CHECK(source.dtype() == target.dtype(), where, ": tensor '", name, "': dtype ",
              dtype_name(source.dtype()), " in the file, ", dtype_name(target.dtype()),
              " in the model");
    TKF_CHECK(source.shape() == target.shape(), where, ": tensor '", name, "': shape ",
              shape_str(source.shape()), " in the file, ", shape_str(target.shape()),
              " in the model");
    used.insert(name);
  }
  if (allow_unused) return;
  constexpr int names_shown = 10;  // enough to see the pattern of a mismatched model
  std::string unused;
  int count = 0;
  for (const auto& named : file.tensors) {
    if (used.contains(named.first)) continue;
    if (++count <= names_shown) unused += (unused.empty() ? "'" : ", '") + named.first + "'";
  }
  if (count > names_shown) unused += " and " + std::to_string(count - names_shown) + " more";
  TKF_CHECK(count == 0, where, ": the file holds ", count, count == 1 ? " tensor" : " tensors",
            " that nothing here loads: ", unused);
}

void copy_into(const SafetensorsFile& file, const std::filesystem::path& path,
               const nn::NamedTensors& targets, bool allow_unused) {
  check_copy_into(file, path, targets, allow_unused);
  std::unordered_map<std::string, const Tensor*> by_name;
  for (const auto& [name, tensor] : file.tensors) by_name.emplace(name, &tensor);
  for (const auto& [name, target] : targets) {
    Tensor destination = target;  // a handle: copy_ writes the caller's storage
    destination.copy_(*by_name.at(name));
  }
}

}  // namespace topkformer::train
