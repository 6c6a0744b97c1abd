// The token cache of classification and retrieval files: it holds what
// tokenizing the records in memory gives, is reused while nothing changes,
// rebuilt when the source or the encoding does or when it is cut short, and
// reports damage and bad lines naming the file.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/temporary_folder.h"
#include "test_util.h"
#include "topkformer/data/byte_tokenizer.h"
#include "topkformer/data/dataset.h"
#include "topkformer/data/listops_tokenizer.h"

namespace topkformer::data {
namespace {

using testing::expect_error_containing;

const ByteTokenizer bytes;

constexpr const char* imdb_text =
    "label\ttext\n1\tA fine film.\n0\tDull <br /> \"really\".\r\n\n1\t\n0\tLong enough to cut\n";

class DatasetCache : public testing::TemporaryFolderTest {
 protected:
  std::filesystem::path cache_dir() const { return directory_ / "cache"; }
  CachedTokenTable read(const std::filesystem::path& source, TsvFormat format,
                        const TokenizeOptions& options = {8, true},
                        const ReadOptions& read_options = {}) const {
    return read_token_table(source, format, bytes, options, read_options, cache_dir());
  }
};

std::vector<std::int32_t> to_vector(std::span<const std::int32_t> ids) {
  return {ids.begin(), ids.end()};
}

void expect_same_items(const ClassificationDataset& cached, const ClassificationDataset& direct) {
  ASSERT_EQ(cached.size(), direct.size());
  for (std::int64_t i = 0; i < direct.size(); ++i) {
    EXPECT_EQ(to_vector(cached.tokens(i)), to_vector(direct.tokens(i))) << "item " << i;
    EXPECT_EQ(cached.label(i), direct.label(i)) << "item " << i;
  }
}

// The identity of a file's contents on disk: rewriting it changes them.
std::pair<ino_t, std::int64_t> inode_and_mtime(const std::filesystem::path& path) {
  struct stat status {};
  EXPECT_EQ(::stat(path.c_str(), &status), 0) << path;
  return {status.st_ino, status.st_mtim.tv_sec * 1'000'000'000LL + status.st_mtim.tv_nsec};
}

// Overwrites the 4 bytes at `offset` of `path` (from the end when negative).
void overwrite_i32(const std::filesystem::path& path, std::streamoff offset, std::int32_t value) {
  std::fstream file(path, std::ios::binary | std::ios::in | std::ios::out);
  file.seekp(offset, offset < 0 ? std::ios::end : std::ios::beg);
  file.write(reinterpret_cast<const char*>(&value), sizeof value);
}

TEST_F(DatasetCache, HoldsWhatTokenizingInMemoryGives) {
  const auto imdb = write("imdb.tsv", imdb_text);
  for (const TokenizeOptions options : {TokenizeOptions{8, true}, TokenizeOptions{5, false}}) {
    const CachedTokenTable cached = read(imdb, TsvFormat::imdb, options);
    EXPECT_TRUE(cached.built);
    EXPECT_EQ(cached.path.parent_path(), cache_dir());
    expect_same_items(ClassificationDataset(cached.table, bytes.pad_id()),
                      ClassificationDataset(read_imdb_tsv(imdb).records, bytes, options));
  }
  // The empty review keeps only CLS; the long one is cut to max_length.
  const ClassificationDataset dataset(read(imdb, TsvFormat::imdb).table, bytes.pad_id());
  ASSERT_EQ(dataset.size(), 4);
  EXPECT_EQ(to_vector(dataset.tokens(2)), (std::vector<std::int32_t>{ByteTokenizer::cls}));
  EXPECT_EQ(dataset.tokens(3).size(), 8u);

  const ListOpsTokenizer listops_tokens;
  const auto listops = write("listops.tsv", "Source\tTarget\n( [MAX 2 9 ] )\t9\n[MIN 4 ]\t4\n");
  const CachedTokenTable listops_cached =
      read_token_table(listops, TsvFormat::listops, listops_tokens, {2000, false}, {}, cache_dir());
  expect_same_items(
      ClassificationDataset(listops_cached.table, listops_tokens.pad_id()),
      ClassificationDataset(read_listops_tsv(listops).records, listops_tokens, {2000, false}));

  const auto aan = write("aan.tsv", "1.0\tp1\tp2\tfirst text\tsecond\n0\tp3\tp4\t\tthird one\n");
  const PairDataset pairs(read(aan, TsvFormat::aan, {6, false}).table, bytes.pad_id());
  const PairDataset direct(read_aan_tsv(aan).records, bytes, {6, false});
  ASSERT_EQ(pairs.size(), 2);
  for (std::int64_t i = 0; i < 2; ++i) {
    EXPECT_EQ(to_vector(pairs.tokens1(i)), to_vector(direct.tokens1(i)));
    EXPECT_EQ(to_vector(pairs.tokens2(i)), to_vector(direct.tokens2(i)));
    EXPECT_EQ(pairs.label(i), direct.label(i));
  }
  // A table of pairs is no classification dataset.
  expect_error_containing(
      [&] {
        ClassificationDataset(read(aan, TsvFormat::aan, {6, false}).table, bytes.pad_id());
      },
      {"ClassificationDataset", "2 texts"});
}

TEST_F(DatasetCache, IsReusedWhileNothingChanges) {
  const auto source = write("imdb.tsv", imdb_text);
  const CachedTokenTable first = read(source, TsvFormat::imdb);
  const auto written = inode_and_mtime(first.path);
  const CachedTokenTable again = read(source, TsvFormat::imdb);
  EXPECT_FALSE(again.built);
  EXPECT_EQ(again.path, first.path);
  EXPECT_EQ(inode_and_mtime(again.path), written);
  expect_same_items(ClassificationDataset(again.table, bytes.pad_id()),
                    ClassificationDataset(first.table, bytes.pad_id()));
  // Nothing but the cache file is left in the folder.
  const auto entries = std::distance(std::filesystem::directory_iterator(cache_dir()),
                                     std::filesystem::directory_iterator());
  EXPECT_EQ(entries, 1);
}

TEST_F(DatasetCache, IsRebuiltWhenTheSourceOrTheEncodingChanges) {
  const auto source = write("imdb.tsv", imdb_text);
  const CachedTokenTable first = read(source, TsvFormat::imdb);

  write("imdb.tsv", "label\ttext\n0\tOther\n");
  const CachedTokenTable changed = read(source, TsvFormat::imdb);
  EXPECT_TRUE(changed.built);
  EXPECT_EQ(changed.path, first.path);  // rebuilt in place
  ASSERT_EQ(changed.table.size(), 1);
  EXPECT_EQ(changed.table.tokens(0).size(), 6u);  // CLS and "Other"
  EXPECT_EQ(first.table.size(), 4);               // the old mapping still shows the old file

  // Same size, only a new modification time: rebuilt as well.
  std::filesystem::last_write_time(
      source, std::filesystem::last_write_time(source) + std::chrono::seconds(5));
  EXPECT_TRUE(read(source, TsvFormat::imdb).built);
  EXPECT_FALSE(read(source, TsvFormat::imdb).built);

  // Another encoding has a cache of its own.
  const CachedTokenTable shorter = read(source, TsvFormat::imdb, {4, true});
  EXPECT_TRUE(shorter.built);
  EXPECT_NE(shorter.path, first.path);
  EXPECT_EQ(shorter.table.tokens(0).size(), 4u);
  EXPECT_TRUE(read(source, TsvFormat::imdb, {8, true}, {.skip_bad_lines = true}).built);
  EXPECT_FALSE(read(source, TsvFormat::imdb, {4, true}).built);
}

TEST_F(DatasetCache, TruncatedOrForeignCacheIsRebuilt) {
  const auto source = write("imdb.tsv", imdb_text);
  const std::filesystem::path path = read(source, TsvFormat::imdb).path;
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 4);
  const CachedTokenTable truncated = read(source, TsvFormat::imdb);
  EXPECT_TRUE(truncated.built);
  EXPECT_EQ(truncated.table.size(), 4);

  std::ofstream(path, std::ios::binary | std::ios::trunc) << "garbage";
  EXPECT_TRUE(read(source, TsvFormat::imdb).built);
  EXPECT_FALSE(read(source, TsvFormat::imdb).built);
}

TEST_F(DatasetCache, DamagedContentsAreAnErrorNamingTheFile) {
  // Header and size intact, so the damage is the disk's or another writer's.
  const auto source = write("imdb.tsv", imdb_text);
  const std::filesystem::path path = read(source, TsvFormat::imdb).path;
  overwrite_i32(path, -4, 7);  // the last label
  expect_error_containing([&] { read(source, TsvFormat::imdb); },
                          {"dataset cache: the token cache '" + path.string() +
                               "' is corrupt: label 7 of item 3 is outside 0..1",
                           "delete the file"});

  std::filesystem::remove(path);
  read(source, TsvFormat::imdb);
  // The first id: after the magic, the count, the header length and the
  // header, at a multiple of 8 bytes.
  std::uint64_t header_bytes = 0;
  std::ifstream(path, std::ios::binary)
      .seekg(16)
      .read(reinterpret_cast<char*>(&header_bytes), sizeof header_bytes);
  overwrite_i32(path, std::streamoff((24 + header_bytes + 7) / 8 * 8), ByteTokenizer::size);
  expect_error_containing([&] { read(source, TsvFormat::imdb); },
                          {path.string(), "id 259 at position 0 is outside the vocabulary [0, 259)",
                           "delete the file"});
}

TEST_F(DatasetCache, BadLinesNameFileAndLineAndLeaveNoCache) {
  const auto source = write("imdb.tsv", "label\ttext\n1\tgood\n2\tbad label\n0\tfine\n");
  expect_error_containing([&] { read(source, TsvFormat::imdb); },
                          {source.string() + ":3:", "label 2 is outside 0..1"});
  EXPECT_TRUE(std::filesystem::is_empty(cache_dir()));

  const ReadOptions skip{.skip_bad_lines = true};
  const CachedTokenTable kept = read(source, TsvFormat::imdb, {8, true}, skip);
  ASSERT_EQ(kept.table.size(), 2);
  EXPECT_EQ(kept.table.label(0), 1);
  EXPECT_EQ(kept.table.label(1), 0);
  EXPECT_FALSE(read(source, TsvFormat::imdb, {8, true}, skip).built);

  const auto missing = directory_ / "missing.tsv";
  expect_error_containing([&] { read(missing, TsvFormat::imdb); },
                          {"dataset cache: cannot read", missing.string()});
}

TEST(TokenTable, KeepChoosesItemsInOrderOfTheCurrentOnes) {
  const std::vector<TextRecord> records = {{"a", 0}, {"bb", 1}, {"ccc", 0}, {"dddd", 1}};
  TokenTable table = TokenTable::encode(records, bytes, {});
  table.keep({3, 1, 2});
  table.keep({2, 0});
  ASSERT_EQ(table.size(), 2);
  EXPECT_EQ(table.tokens(0).size(), 3u);  // "ccc"
  EXPECT_EQ(table.tokens(1).size(), 4u);  // "dddd"
  EXPECT_EQ(table.label(1), 1);
  expect_error_containing([&] { table.keep({2}); }, {"index 2 outside [0, 2)"});
  expect_error_containing([&] { table.tokens(0, 1); }, {"dataset text: index 1"});
}

}  // namespace
}  // namespace topkformer::data
