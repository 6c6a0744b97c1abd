// The language-model corpus: the token cache encodes every line plus an
// end-of-line id, is reused while its source and tokenizer are unchanged and
// rebuilt otherwise; training blocks and evaluation segments cover the stream
// as documented; WikiText-103 valid has the published token count.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "data/temporary_folder.h"
#include "test_util.h"
#include "topkformer/data/byte_tokenizer.h"
#include "topkformer/data/data_root.h"
#include "topkformer/data/lm_corpus.h"
#include "topkformer/data/word_vocabulary.h"

namespace topkformer::data {
namespace {

using testing::expect_error_containing;

// A fresh folder per test, removed afterwards.
class LmCorpus : public testing::TemporaryFolderTest {
 protected:
  std::filesystem::path cache_dir() const { return directory_ / "cache"; }
  // Builds the cache of `source` and returns its file, the mapping released.
  std::filesystem::path built_cache(const std::filesystem::path& source,
                                    const WordVocabulary& vocabulary) const {
    return TokenCache(source, vocabulary, vocabulary.eos_id(), cache_dir()).path();
  }
};

std::vector<std::uint32_t> to_vector(std::span<const std::uint32_t> ids) {
  return {ids.begin(), ids.end()};
}

// The stream the cache promises: each line's ids, then the end-of-line id.
std::vector<std::uint32_t> expected_stream(const std::string& text, const Tokenizer& tokenizer,
                                           std::int32_t eos_id) {
  std::vector<std::uint32_t> ids;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    for (const std::int32_t id : tokenizer.encode(line)) ids.push_back(id);
    ids.push_back(eos_id);
  }
  return ids;
}

// The identity of a file's contents on disk: rewriting it changes them.
std::pair<ino_t, std::int64_t> inode_and_mtime(const std::filesystem::path& path) {
  struct stat status {};
  EXPECT_EQ(::stat(path.c_str(), &status), 0) << path;
  return {status.st_ino, status.st_mtim.tv_sec * 1'000'000'000LL + status.st_mtim.tv_nsec};
}

constexpr const char* small_text = "the cat sat\n\nthe dog ran far\nthe end";

TEST_F(LmCorpus, CacheHoldsEveryLineAndAnEosPerLine) {
  const auto source = write("train.txt", small_text);
  const auto vocabulary = WordVocabulary::build(source);
  const TokenCache cache(source, vocabulary, vocabulary.eos_id(), cache_dir());
  EXPECT_TRUE(cache.built());
  EXPECT_EQ(cache.path().parent_path(), cache_dir());
  EXPECT_TRUE(std::filesystem::exists(cache.path()));
  // 3 + 0 + 4 + 2 words and 4 lines (the last has no line break).
  ASSERT_EQ(cache.size(), 13u);
  EXPECT_EQ(to_vector(cache.ids()), expected_stream(small_text, vocabulary, vocabulary.eos_id()));
  EXPECT_EQ(cache[3], static_cast<std::uint32_t>(vocabulary.eos_id()));
  EXPECT_EQ(cache[4], static_cast<std::uint32_t>(vocabulary.eos_id()));
  TokenIds as_ids(cache.ids().begin(), cache.ids().end());
  EXPECT_EQ(vocabulary.decode(as_ids), "the cat sat\n\nthe dog ran far\nthe end\n");
}

TEST_F(LmCorpus, CacheWorksWithAnyTokenizer) {
  const auto source = write("bytes.txt", "ab\n\xff\n");
  const ByteTokenizer bytes;
  const TokenCache cache(source, bytes, bytes.eos_id(), cache_dir());
  EXPECT_EQ(to_vector(cache.ids()), (std::vector<std::uint32_t>{97, 98, 258, 255, 258}));
}

TEST_F(LmCorpus, CacheIsReusedWhileNothingChanges) {
  const auto source = write("train.txt", small_text);
  const auto vocabulary = WordVocabulary::build(source);
  std::filesystem::path path;
  std::vector<std::uint32_t> first_ids;
  {
    const TokenCache first(source, vocabulary, vocabulary.eos_id(), cache_dir());
    path = first.path();
    first_ids = to_vector(first.ids());
  }
  const auto written = inode_and_mtime(path);
  TokenCache again(source, vocabulary, vocabulary.eos_id(), cache_dir());
  EXPECT_FALSE(again.built());
  EXPECT_EQ(again.path(), path);
  EXPECT_EQ(inode_and_mtime(path), written);
  EXPECT_EQ(to_vector(again.ids()), first_ids);
  // Moving hands the mapping over.
  TokenCache moved = std::move(again);
  EXPECT_EQ(to_vector(moved.ids()), first_ids);
  TokenCache assigned(write("other.txt", "x y\n"), vocabulary, vocabulary.eos_id(), cache_dir());
  assigned = std::move(moved);
  EXPECT_EQ(to_vector(assigned.ids()), first_ids);
  // Nothing but the two cache files is left in the folder.
  const auto entries = std::distance(std::filesystem::directory_iterator(cache_dir()),
                                     std::filesystem::directory_iterator());
  EXPECT_EQ(entries, 2);
}

TEST_F(LmCorpus, CacheIsRebuiltWhenTheSourceChanges) {
  const auto source = write("train.txt", small_text);
  const auto vocabulary = WordVocabulary::build(source);
  const TokenCache first(source, vocabulary, vocabulary.eos_id(), cache_dir());

  write("train.txt", "the dog sat\n");
  const TokenCache changed(source, vocabulary, vocabulary.eos_id(), cache_dir());
  EXPECT_TRUE(changed.built());
  EXPECT_EQ(changed.path(), first.path());  // rebuilt in place
  EXPECT_EQ(to_vector(changed.ids()), expected_stream("the dog sat\n", vocabulary, 3));
  // The old mapping still shows the old stream.
  EXPECT_EQ(first.size(), 13u);

  // Same size, only a new modification time: rebuilt as well.
  std::filesystem::last_write_time(
      source, std::filesystem::last_write_time(source) + std::chrono::seconds(5));
  EXPECT_TRUE(TokenCache(source, vocabulary, vocabulary.eos_id(), cache_dir()).built());
  EXPECT_FALSE(TokenCache(source, vocabulary, vocabulary.eos_id(), cache_dir()).built());
}

TEST_F(LmCorpus, CacheDependsOnTheTokenizerAndEosId) {
  const auto source = write("train.txt", small_text);
  const auto all_words = WordVocabulary::build(source);
  const auto frequent_words = WordVocabulary::build(source, 2);
  const TokenCache with_all(source, all_words, all_words.eos_id(), cache_dir());
  const TokenCache with_frequent(source, frequent_words, frequent_words.eos_id(), cache_dir());
  EXPECT_TRUE(with_frequent.built());
  EXPECT_NE(with_frequent.path(), with_all.path());
  EXPECT_EQ(to_vector(with_frequent.ids()),
            expected_stream(small_text, frequent_words, frequent_words.eos_id()));
  const TokenCache other_eos(source, all_words, all_words.unk_id(), cache_dir());
  EXPECT_TRUE(other_eos.built());
  EXPECT_EQ(other_eos[3], static_cast<std::uint32_t>(all_words.unk_id()));
  EXPECT_FALSE(TokenCache(source, all_words, all_words.eos_id(), cache_dir()).built());
}

TEST_F(LmCorpus, DamagedCacheIsRebuilt) {
  const auto source = write("train.txt", small_text);
  const auto vocabulary = WordVocabulary::build(source);
  const std::filesystem::path path = built_cache(source, vocabulary);
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 4);
  const TokenCache truncated(source, vocabulary, vocabulary.eos_id(), cache_dir());
  EXPECT_TRUE(truncated.built());
  EXPECT_EQ(truncated.size(), 13u);

  std::ofstream(path, std::ios::binary | std::ios::trunc) << "garbage";
  EXPECT_TRUE(TokenCache(source, vocabulary, vocabulary.eos_id(), cache_dir()).built());
}

TEST_F(LmCorpus, CacheWithAnIdOutsideTheVocabularyIsAnErrorNamingIt) {
  // Its header and size are intact, so it used to be mapped, and training
  // failed later with "gather_rows: index out of range", naming no file.
  const auto source = write("train.txt", small_text);
  const auto vocabulary = WordVocabulary::build(source);
  const std::filesystem::path path = built_cache(source, vocabulary);
  {
    // The last of the 13 ids (position 12) becomes the vocabulary size.
    std::fstream file(path, std::ios::binary | std::ios::in | std::ios::out);
    file.seekp(-4, std::ios::end);
    const auto id = static_cast<std::uint32_t>(vocabulary.vocab_size());
    file.write(reinterpret_cast<const char*>(&id), sizeof id);
  }
  expect_error_containing(
      [&] { TokenCache(source, vocabulary, vocabulary.eos_id(), cache_dir()); },
      {"lm corpus: the token cache '" + path.string() + "' is corrupt: id " +
           std::to_string(vocabulary.vocab_size()) + " at position 12 is outside the vocabulary",
       "delete the file"});
}

TEST_F(LmCorpus, BadSourcesAreErrorsNamingTheFile) {
  const ByteTokenizer bytes;
  expect_error_containing([&] { TokenCache(write("empty.txt", ""), bytes, 258, cache_dir()); },
                          {"lm corpus", "empty.txt", "no tokens"});
  expect_error_containing(
      [&] { TokenCache(write("blank.txt", "\n\n\n"), bytes, 258, cache_dir()); },
      {"blank.txt", "no tokens"});
  expect_error_containing([&] { TokenCache(cache_dir() / "absent.txt", bytes, 258, cache_dir()); },
                          {"lm corpus", "cannot read", "absent.txt"});
  expect_error_containing([&] { TokenCache(cache_dir(), bytes, 258, cache_dir()); },
                          {"cannot read", "not a regular file"});
  expect_error_containing([&] { TokenCache(write("a.txt", "a"), bytes, 259, cache_dir()); },
                          {"eos id 259"});
  // No partial cache is left behind by a failed build.
  for (const auto& entry : std::filesystem::directory_iterator(cache_dir()))
    ADD_FAILURE() << "left over: " << entry.path();
}

TEST(LmBlocks, BlocksOverlapByOneTokenAndDropTheTail) {
  std::vector<std::uint32_t> ids(11);
  std::iota(ids.begin(), ids.end(), 0u);
  const LmBlocks blocks(ids, 3);
  ASSERT_EQ(blocks.size(), 3);  // (11 - 1) / 3
  EXPECT_EQ(blocks.seq_len(), 3);
  for (std::int64_t i = 0; i < blocks.size(); ++i) {
    const LmExample block = blocks.block(i);
    const auto start = static_cast<std::uint32_t>(3 * i);
    EXPECT_EQ(to_vector(block.inputs), (std::vector<std::uint32_t>{start, start + 1, start + 2}));
    EXPECT_EQ(to_vector(block.targets),
              (std::vector<std::uint32_t>{start + 1, start + 2, start + 3}));
  }
  EXPECT_EQ(LmBlocks(std::span(ids).first(10), 3).size(), 3);
  EXPECT_EQ(LmBlocks(std::span(ids).first(4), 3).size(), 1);
  expect_error_containing([&] { blocks.block(3); }, {"lm blocks", "block 3"});
  expect_error_containing([&] { LmBlocks(std::span(ids).first(3), 3); }, {"lm blocks", "3 tokens"});
  expect_error_containing([&] { LmBlocks(ids, 0); }, {"seq_len"});
}

TEST(LmBlocks, EvalSegmentsPredictEveryTokenOnce) {
  std::vector<std::uint32_t> ids(11);
  std::iota(ids.begin(), ids.end(), 0u);
  const auto segments = lm_eval_segments(ids, 4);
  ASSERT_EQ(segments.size(), 3u);
  std::vector<std::uint32_t> inputs, targets;
  for (const LmExample& segment : segments) {
    ASSERT_EQ(segment.inputs.size(), segment.targets.size());
    EXPECT_LE(segment.inputs.size(), 4u);
    inputs.insert(inputs.end(), segment.inputs.begin(), segment.inputs.end());
    targets.insert(targets.end(), segment.targets.begin(), segment.targets.end());
  }
  EXPECT_EQ(segments.back().inputs.size(), 2u);
  EXPECT_EQ(inputs, std::vector<std::uint32_t>(ids.begin(), ids.end() - 1));
  EXPECT_EQ(targets, std::vector<std::uint32_t>(ids.begin() + 1, ids.end()));
  EXPECT_EQ(lm_eval_segments(ids, 5).size(), 2u);  // 10 predictions in two whole segments
  EXPECT_EQ(lm_eval_segments(ids, 100).size(), 1u);
  expect_error_containing([&] { lm_eval_segments(std::span(ids).first(1), 4); },
                          {"lm eval segments", "nothing to predict"});
  expect_error_containing([&] { lm_eval_segments(ids, 0); }, {"seq_len"});
}

// WikiText-103 valid, as published: 213,886 words in 3,760 lines, 217,646
// tokens once every line (blank ones included) ends in <eos>.
TEST_F(LmCorpus, WikiText103ValidHasThePublishedTokenCount) {
  const std::filesystem::path source = data_file("wikitext-103/wiki.valid.tokens");
  TKF_SKIP_UNLESS_DATA_FILE(source);
  const auto vocabulary = WordVocabulary::build(source);
  const TokenCache cache(source, vocabulary, vocabulary.eos_id(), cache_dir());
  EXPECT_EQ(cache.size(), 217'646u);
  EXPECT_EQ(std::count(cache.ids().begin(), cache.ids().end(),
                       static_cast<std::uint32_t>(vocabulary.eos_id())),
            3'760);
  EXPECT_EQ(vocabulary.count(vocabulary.eos_id()), 3'760);
  EXPECT_GT(vocabulary.count(vocabulary.unk_id()), 0);  // WikiText's own <unk>

  // Decoding gives back every line's words, single-spaced.
  std::ifstream in(source);
  std::string expected_text;
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string word, joined;
    while (words >> word) joined += (joined.empty() ? "" : " ") + word;
    expected_text += joined + "\n";
  }
  EXPECT_EQ(vocabulary.decode(TokenIds(cache.ids().begin(), cache.ids().end())), expected_text);

  const TokenCache reused(source, vocabulary, vocabulary.eos_id(), cache_dir());
  EXPECT_FALSE(reused.built());
  EXPECT_TRUE(
      std::equal(reused.ids().begin(), reused.ids().end(), cache.ids().begin(), cache.ids().end()));
  EXPECT_EQ(LmBlocks(reused.ids(), 1024).size(), 217'645 / 1024);
  EXPECT_EQ(lm_eval_segments(reused.ids(), 1024).size(), (217'645u + 1023) / 1024);
}

TEST(DataRoot, FollowsTopkformerData) {
  const char* saved = std::getenv("TOPKFORMER_DATA");
  const std::string previous = saved != nullptr ? saved : "";
  ::setenv("TOPKFORMER_DATA", "/somewhere/data", 1);
  EXPECT_EQ(data_root(), std::filesystem::path("/somewhere/data"));
  EXPECT_EQ(data_file("imdb/train.tsv"), std::filesystem::path("/somewhere/data/imdb/train.tsv"));
  ::unsetenv("TOPKFORMER_DATA");
  EXPECT_EQ(data_root().filename(), "data");
  EXPECT_EQ(data_root().parent_path().filename(), "shared");
  const std::string message = missing_data_message("/somewhere/x.tsv");
  EXPECT_NE(message.find("/somewhere/x.tsv"), std::string::npos) << message;
  EXPECT_NE(message.find("TOPKFORMER_DATA"), std::string::npos) << message;
  if (saved != nullptr) ::setenv("TOPKFORMER_DATA", previous.c_str(), 1);
}

}  // namespace
}  // namespace topkformer::data
