// safetensors files: every dtype and layout round-trips bit for bit; the bytes
// follow the published layout (checked by hand here); every single-byte change
// anywhere in a file, every truncation and every malformed header is an Error
// naming the file (and the tensor); copy_into checks names, dtypes and shapes.
#include "topkformer/train/safetensors.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/temporary_folder.h"
#include "test_util.h"
#include "topkformer/core/runtime.h"
#include "train/file_bytes.h"

namespace topkformer::train {
namespace {

using testing::expect_error_containing;
using testing::read_bytes;
using testing::tensor_bytes;
using testing::write_bytes;

class Safetensors : public testing::TemporaryFolderTest {
 protected:
  std::filesystem::path path(const std::string& name = "file.safetensors") const {
    return directory_ / name;
  }
  // A file as another writer could produce it: `header` verbatim (padded with
  // spaces to a multiple of 8 bytes), then `data`.
  std::filesystem::path write_raw(const std::string& header, const std::string& data,
                                  const std::string& name = "raw.safetensors") const {
    std::string text = header;
    text.append((8 - text.size() % 8) % 8, ' ');
    std::string bytes(8, '\0');
    std::uint64_t size = text.size();
    for (char& byte : bytes) {
      byte = static_cast<char>(size & 0xff);
      size >>= 8;
    }
    write_bytes(path(name), bytes + text + data);
    return path(name);
  }
};

std::string hex(std::uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

// A few small tensors of different dtypes, for the corruption tests.
nn::NamedTensors small_tensors() {
  return {{"w", Tensor::from_vector<float>({2, 3}, {1, -2, 3.5f, 0, 1e-30f, -7})},
          {"ids", Tensor::from_vector<std::int64_t>({2}, {-1, 1LL << 40})},
          {"flag", Tensor::from_vector<std::uint8_t>({}, {255})}};
}

TEST(SafetensorsChecksum, TestHashIsFnv1a64) {
  // Published FNV-1a 64 test vectors: the tests below check the library against this one.
  EXPECT_EQ(testing::fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(testing::fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(testing::fnv1a64("foobar"), 0x85944171f73967e8ull);
}

TEST_F(Safetensors, EveryDtypeAndLayoutRoundTripsBitForBit) {
  Generator generator(7);
  const Tensor matrix = Tensor::randn({3, 5}, generator, DType::f32);
  Tensor special = Tensor::from_vector<float>(
      {4}, {std::numeric_limits<float>::quiet_NaN(), -0.0f, std::numeric_limits<float>::infinity(),
            std::numeric_limits<float>::denorm_min()});
  const nn::NamedTensors tensors = {
      {"f32", matrix},
      {"f64", Tensor::randn({2, 2, 3}, generator, DType::f64)},
      {"i32", Tensor::arange(-5, 7, 1, DType::i32).view({3, 4})},
      {"i64", Tensor::from_vector<std::int64_t>({3}, {std::numeric_limits<std::int64_t>::min(), 0,
                                                      std::numeric_limits<std::int64_t>::max()})},
      {"u8", Tensor::arange(0, 256, 1, DType::u8)},
      {"special", special},
      {"transposed", matrix.transpose(0, 1)},                 // non-contiguous
      {"strided", matrix.slice(1, 1, 5, 2).narrow(0, 1, 2)},  // non-contiguous, offset
      {"expanded", Tensor::arange(0, 3, 1, DType::f64).unsqueeze(0).expand({2, 3})},
      {"scalar", Tensor::full({}, 2.5, DType::f64)},
      {"empty", Tensor::empty({0, 4}, DType::i64)},
      {"layer.0.weight", Tensor::ones({1}, DType::f32)},
  };
  ASSERT_FALSE(tensors[6].second.is_contiguous());
  ASSERT_FALSE(tensors[7].second.is_contiguous());
  write_safetensors(path(), tensors, {{"note", "hello"}, {"empty", ""}});

  const SafetensorsFile file = read_safetensors(path());
  ASSERT_EQ(file.tensors.size(), tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, expected] = tensors[i];
    const auto& [read_name, read] = file.tensors[i];
    EXPECT_EQ(read_name, name) << "file order is the written order";
    EXPECT_EQ(read.dtype(), expected.dtype()) << name;
    EXPECT_EQ(read.shape(), expected.shape()) << name;
    EXPECT_TRUE(read.device().is_cpu());
    EXPECT_EQ(tensor_bytes(read), tensor_bytes(expected)) << name;
  }
  EXPECT_EQ(file.metadata.at("note"), "hello");
  EXPECT_EQ(file.metadata.at("empty"), "");
  EXPECT_EQ(file.metadata.at("topkformer_version"), version());
}

TEST_F(Safetensors, NoTensorsIsAValidFile) {
  write_safetensors(path(), {});
  const SafetensorsFile file = read_safetensors(path());
  EXPECT_TRUE(file.tensors.empty());
  EXPECT_EQ(file.metadata.at("checksum_algorithm"), "fnv1a64");
}

// The bytes follow https://huggingface.co/docs/safetensors: parsed by hand.
TEST_F(Safetensors, LayoutIsTheSafetensorsFormat) {
  const Tensor weight = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  const Tensor ids = Tensor::from_vector<std::int32_t>({2}, {-1, 9});
  write_safetensors(path(), {{"weight", weight.transpose(0, 1)}, {"ids", ids}}, {{"k", "v"}});
  const std::string bytes = read_bytes(path());

  ASSERT_GE(bytes.size(), 8u);
  std::uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i)
    header_size = (header_size << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  EXPECT_EQ(header_size % 8, 0u) << "padded to a multiple of 8 like the reference writer";
  ASSERT_LE(8 + header_size, bytes.size());
  const std::string text = bytes.substr(8, header_size);
  const std::size_t json_end = text.find_last_not_of(' ') + 1;
  EXPECT_EQ(text[json_end - 1], '}');
  EXPECT_LT(text.size() - json_end, 8u) << "only the padding is spaces";
  const nlohmann::json header = nlohmann::json::parse(text.substr(0, json_end));

  const nlohmann::json& weight_entry = header.at("weight");
  EXPECT_EQ(weight_entry.at("dtype"), "F32");
  EXPECT_EQ(weight_entry.at("shape"), nlohmann::json({3, 2}));
  EXPECT_EQ(weight_entry.at("data_offsets"), nlohmann::json({0, 24}));
  const nlohmann::json& ids_entry = header.at("ids");
  EXPECT_EQ(ids_entry.at("dtype"), "I32");
  EXPECT_EQ(ids_entry.at("shape"), nlohmann::json({2}));
  EXPECT_EQ(ids_entry.at("data_offsets"), nlohmann::json({24, 32}));
  EXPECT_EQ(header.size(), 3u);  // __metadata__ and the two tensors

  // The data section: the tensors back to back, row-major, little endian.
  const std::string data = bytes.substr(8 + header_size);
  ASSERT_EQ(data.size(), 32u);
  float weight_values[6];
  std::memcpy(weight_values, data.data(), 24);
  EXPECT_EQ(std::vector<float>(weight_values, weight_values + 6),
            (std::vector<float>{1, 4, 2, 5, 3, 6}));
  std::int32_t id_values[2];
  std::memcpy(id_values, data.data() + 24, 8);
  EXPECT_EQ(id_values[0], -1);
  EXPECT_EQ(id_values[1], 9);

  // Metadata: strings only; the version and the FNV-1a 64 checksums.
  const nlohmann::json& metadata = header.at("__metadata__");
  for (const auto& item : metadata.items()) EXPECT_TRUE(item.value().is_string()) << item.key();
  EXPECT_EQ(metadata.at("k"), "v");
  EXPECT_EQ(metadata.at("topkformer_version"), version());
  EXPECT_EQ(metadata.at("checksum_algorithm"), "fnv1a64");
  EXPECT_EQ(metadata.at("checksum:weight"), hex(testing::fnv1a64(data.substr(0, 24))));
  EXPECT_EQ(metadata.at("checksum:ids"), hex(testing::fnv1a64(data.substr(24, 8))));
  // The header checksum covers the header bytes (padding included) with its
  // own value replaced by 16 zeros.
  const std::string stored = metadata.at("header_checksum");
  std::string zeroed = text;
  const std::string field = "\"header_checksum\":\"" + stored + "\"";
  ASSERT_NE(zeroed.find(field), std::string::npos);
  zeroed.replace(zeroed.find(field), field.size(),
                 "\"header_checksum\":\"" + std::string(16, '0') + "\"");
  EXPECT_EQ(stored, hex(testing::fnv1a64(zeroed)));
}

TEST_F(Safetensors, EverySingleByteChangeIsDetected) {
  write_safetensors(path(), small_tensors(), {{"note", "x"}});
  const std::string original = read_bytes(path());
  ASSERT_NO_THROW(read_safetensors(path()));
  const std::filesystem::path damaged = path("damaged.safetensors");
  std::vector<std::string> undetected;
  // One low bit, the ASCII case bit, the top bit, every bit.
  for (const unsigned char mask : {0x01, 0x20, 0x80, 0xff}) {
    for (std::size_t position = 0; position < original.size(); ++position) {
      std::string bytes = original;
      bytes[position] = static_cast<char>(static_cast<unsigned char>(bytes[position]) ^ mask);
      write_bytes(damaged, bytes);
      try {
        read_safetensors(damaged);
        undetected.push_back("byte " + std::to_string(position) + " ^ " + std::to_string(mask));
      } catch (const Error& error) {
        EXPECT_NE(std::string(error.what()).find(damaged.string()), std::string::npos)
            << error.what();
      }
    }
  }
  EXPECT_EQ(undetected, std::vector<std::string>{}) << "of " << original.size() << " bytes";
}

TEST_F(Safetensors, EveryTruncationAndAnAppendedByteAreDetected) {
  write_safetensors(path(), small_tensors());
  const std::string original = read_bytes(path());
  const std::filesystem::path damaged = path("damaged.safetensors");
  for (std::size_t size = 0; size < original.size(); ++size) {
    write_bytes(damaged, original.substr(0, size));
    EXPECT_THROW(read_safetensors(damaged), Error) << "truncated to " << size << " bytes";
  }
  write_bytes(damaged, original + '\0');
  expect_error_containing([&] { read_safetensors(damaged); },
                          {damaged.string(), "1 bytes after the last tensor"});
}

TEST_F(Safetensors, ChecksumMismatchNamesTheTensor) {
  write_safetensors(path(), small_tensors());
  std::string bytes = read_bytes(path());
  bytes[bytes.size() - 2] ^= 1;  // in `ids`, before the one-byte `flag`
  write_bytes(path(), bytes);
  expect_error_containing(
      [&] { read_safetensors(path()); },
      {path().string() + ": tensor 'ids': checksum mismatch (file is corrupt)"});
}

TEST_F(Safetensors, ReadsFilesOfOtherWriters) {
  // No topkformer metadata: read without checksums, as the reference writes them.
  const std::string data = std::string("\x00\x00\x80\x3f\x00\x00\x00\x40", 8) + "\x07";
  const auto file_path = write_raw(
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"U8","shape":[],"data_offsets":[8,9]},)"
      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
      data);
  const SafetensorsFile file = read_safetensors(file_path);
  ASSERT_EQ(file.tensors.size(), 2u);
  EXPECT_EQ(file.tensors[0].first, "a") << "in data order";
  EXPECT_EQ(file.tensors[0].second.to_vector<float>(), (std::vector<float>{1, 2}));
  EXPECT_EQ(file.tensors[1].first, "b");
  EXPECT_EQ(file.tensors[1].second.item(), 7.0);
  EXPECT_EQ(file.metadata.at("format"), "pt");
  EXPECT_NO_THROW(read_safetensors(write_raw("{}", "")));
}

TEST_F(Safetensors, MalformedFilesAreErrorsNamingFileAndTensor) {
  const auto expect_error = [&](const std::string& header, const std::string& data,
                                std::initializer_list<std::string> fragments) {
    const auto file = write_raw(header, data);
    std::vector<std::string> all = fragments;
    all.push_back(file.string() + ": ");
    try {
      read_safetensors(file);
      ADD_FAILURE() << "no error for " << header;
    } catch (const Error& error) {
      for (const std::string& fragment : all)
        EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos)
            << error.what() << " lacks " << fragment;
    }
  };
  const std::string f32x2 = R"({"dtype":"F32","shape":[2],"data_offsets":)";
  expect_error("{not json}", "", {"not valid JSON"});
  expect_error("[1, 2]", "", {"not a JSON object"});
  expect_error(R"({"a":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]}})", "xx",
               {"tensor 'a'", "dtype 'BF16' is not supported"});
  expect_error(R"({"a":)" + f32x2 + "[0,4]}}", "xxxx", {"tensor 'a'", "needs 8 bytes"});
  expect_error(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", "xxxxxxxx",
               {"tensor 'a'", "not a non-negative integer"});
  expect_error(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", "xxxxxxxx",
               {"tensor 'a'", "shape"});
  expect_error(R"({"a":{"dtype":"F32","shape":[4611686018427387904, 8],"data_offsets":[0,8]}})",
               "xxxxxxxx", {"tensor 'a'", "too large"});
  expect_error(R"({"a":{"dtype":"F32","shape":[2]}})", "", {"tensor 'a'", "data_offsets"});
  expect_error(R"({"a":)" + f32x2 + R"([0,8],"extra":1}})", "xxxxxxxx",
               {"tensor 'a'", "unknown field 'extra'"});
  expect_error(R"({"a":)" + f32x2 + "[8,0]}}", "xxxxxxxx", {"tensor 'a'", "end before"});
  expect_error(R"({"a":)" + f32x2 + R"([0,8]},"b":)" + f32x2 + "[12,20]}}", std::string(20, 'x'),
               {"tensor 'b'", "leave bytes [8, 12)"});
  expect_error(R"({"a":)" + f32x2 + R"([0,8]},"b":)" + f32x2 + "[4,12]}}", std::string(12, 'x'),
               {"tensor 'b'", "overlap"});
  expect_error(R"({"a":)" + f32x2 + "[4,12]}}", std::string(12, 'x'),
               {"tensor 'a'", "leave bytes [0, 4)"});
  expect_error(R"({"a":)" + f32x2 + "[0,8]}}", "xxxx", {"truncated"});
  expect_error(R"({"a":)" + f32x2 + "[0,8]}}", std::string(12, 'x'),
               {"4 bytes after the last tensor"});
  expect_error(R"({"__metadata__":{"n":1}})", "", {"metadata 'n' is not a string"});
  // Any of our keys makes all of them required.
  expect_error(R"({"__metadata__":{"topkformer_version":"0.1.0"}})", "",
               {"'checksum_algorithm' is missing"});
  expect_error(R"({"__metadata__":{"checksum_algorithm":"md5","topkformer_version":"0"}})", "",
               {"checksum algorithm 'md5' is not supported"});

  write_bytes(path("short"), "abc");
  expect_error_containing([&] { read_safetensors(path("short")); },
                          {path("short").string(), "3 bytes, too short"});
  write_bytes(path("long_header"), std::string("\x00\x01\x00\x00\x00\x00\x00\x00", 8) + "{}");
  expect_error_containing([&] { read_safetensors(path("long_header")); },
                          {path("long_header").string(), "header size 256 runs past the end"});
  expect_error_containing([&] { read_safetensors(path("missing")); },
                          {path("missing").string(), "cannot read"});
}

TEST_F(Safetensors, DeeplyNestedHeaderIsRefusedBeforeParsing) {
  // A shape of 100,000 nested lists overflowed the stack (SIGSEGV in `eval`
  // and `--resume auto`) instead of giving an error: the message about the
  // bad extent printed it with the JSON library's recursive dump().
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const std::string f32 = R"({"a":{"dtype":"F32","shape":[)";
  for (const std::string& header :
       {f32 + deep + R"(],"data_offsets":[0,4]}})", R"({"a":)" + std::string(100000, '['),
        R"({"__metadata__":)" + deep + "}"}) {
    const auto file = write_raw(header, "xxxx");
    expect_error_containing([&] { read_safetensors(file); },
                            {file.string() + ": ", "nested deeper than 64 levels"});
  }
  // Brackets inside strings are text, not nesting, escaped quotes included.
  const std::string name = "\\\"" + std::string(200, '[') + "\"\\";
  write_safetensors(path("brackets"), {{name, Tensor::from_vector<float>({1}, {2.0f})}});
  const SafetensorsFile read = read_safetensors(path("brackets"));
  ASSERT_EQ(read.tensors.size(), 1u);
  EXPECT_EQ(read.tensors[0].first, name);
}

TEST_F(Safetensors, WriterRejectsBadNamesAndReservedMetadata) {
  const Tensor one = Tensor::ones({1});
  expect_error_containing(
      [&] {
        write_safetensors(path(), {{"a", one}, {"a", one}});
      },
      {path().string(), "tensor 'a' is given twice"});
  expect_error_containing([&] { write_safetensors(path(), {{"", one}}); }, {"empty name"});
  expect_error_containing(
      [&] {
        write_safetensors(path(), {{"__metadata__", one}});
      },
      {"may not be named '__metadata__'"});
  expect_error_containing(
      [&] {
        write_safetensors(path(), {{"a", Tensor()}});
      },
      {"tensor 'a' is undefined"});
  expect_error_containing(
      [&] {
        write_safetensors(path(), {{"a", one}}, {{"checksum:a", "0"}});
      },
      {"metadata key 'checksum:a' is reserved"});
  expect_error_containing(
      [&] {
        write_safetensors(path(), {{"bad\xff", one}});
      },
      {path().string(), "cannot write the header", "UTF-8"});
  EXPECT_FALSE(std::filesystem::exists(path()));
}

TEST_F(Safetensors, CopyIntoMatchesByNameDtypeAndShape) {
  Generator generator(3);
  const Tensor weight = Tensor::randn({4, 8}, generator);
  const Tensor bias = Tensor::randn({8}, generator, DType::f64);
  write_safetensors(path(), {{"x.weight", weight}, {"x.bias", bias}});
  const SafetensorsFile file = read_safetensors(path());

  // Into a non-contiguous target too: copy_into writes through the view.
  Tensor storage = Tensor::zeros({8, 4});
  const Tensor weight_target = storage.transpose(0, 1);
  const Tensor bias_target = Tensor::zeros({8}, DType::f64);
  copy_into(file, path(), {{"x.bias", bias_target}, {"x.weight", weight_target}});
  EXPECT_EQ(tensor_bytes(weight_target), tensor_bytes(weight));
  EXPECT_EQ(tensor_bytes(bias_target), tensor_bytes(bias));

  const std::string where = path().string();
  const Tensor untouched = Tensor::zeros({8}, DType::f64);
  expect_error_containing(
      [&] {
        copy_into(file, path(), {{"x.bias", untouched}, {"x.weight", Tensor::zeros({8, 4})}});
      },
      {where + ": tensor 'x.weight': shape [4, 8] in the file, [8, 4] in the model"});
  EXPECT_EQ(untouched.to_vector<double>(), std::vector<double>(8, 0.0))
      << "nothing is copied when a check fails";
  expect_error_containing(
      [&] {
        copy_into(file, path(), {{"x.bias", Tensor::zeros({8}, DType::f32)}}, true);
      },
      {where + ": tensor 'x.bias': dtype f64 in the file, f32 in the model"});
  expect_error_containing(
      [&] {
        copy_into(file, path(), {{"x.scale", Tensor::zeros({8})}}, true);
      },
      {where + ": tensor 'x.scale' is missing from the file"});
  expect_error_containing(
      [&] {
        copy_into(file, path(), {{"x.bias", bias_target}});
      },
      {where + ": the file holds 1 tensor that nothing here loads: 'x.weight'"});
  EXPECT_NO_THROW(copy_into(file, path(), {{"x.bias", bias_target}}, /*allow_unused=*/true));
}

}  // namespace
}  // namespace topkformer::train
