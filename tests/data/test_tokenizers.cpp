// Tokenizers: byte, ListOps, word vocabulary and SentencePiece round-trip
// their text, keep their documented ids, and reject input they cannot encode.
#include <gtest/gtest.h>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/temporary_folder.h"
#include "test_util.h"
#include "topkformer/data/byte_tokenizer.h"
#include "topkformer/data/listops_tokenizer.h"
#include "topkformer/data/sentencepiece_tokenizer.h"
#include "topkformer/data/word_vocabulary.h"

namespace topkformer::data {
namespace {

using testing::expect_error_containing;

// A fresh folder per test, removed afterwards.
class TemporaryFolder : public testing::TemporaryFolderTest {};

class WordVocabularyFiles : public TemporaryFolder {};
class SentencePieceFiles : public TemporaryFolder {};

TEST(ByteTokenizer, EncodesEveryByteAndRoundTrips) {
  const ByteTokenizer tokenizer;
  const std::string text{"a\0\xff\n\xc3\xa9", 6};  // NUL, 0xFF, a newline and UTF-8 "é"
  EXPECT_EQ(tokenizer.encode(text), (TokenIds{97, 0, 255, 10, 0xc3, 0xa9}));
  EXPECT_EQ(tokenizer.decode(tokenizer.encode(text)), text);
  EXPECT_EQ(tokenizer.vocab_size(), 259);
  EXPECT_EQ(tokenizer.pad_id(), 256);
  EXPECT_EQ(tokenizer.cls_id(), 257);
  EXPECT_EQ(tokenizer.eos_id(), 258);
}

TEST(ByteTokenizer, DecodeSkipsSpecialIdsAndRejectsOthers) {
  const ByteTokenizer tokenizer;
  EXPECT_EQ(tokenizer.decode({257, 104, 105, 258, 256, 256}), "hi");
  expect_error_containing([&] { tokenizer.decode({104, 259}); }, {"byte tokenizer", "259"});
  expect_error_containing([&] { tokenizer.decode({-1}); }, {"byte tokenizer", "-1"});
}

TEST(ListOpsTokenizer, DropsParenthesesAndUsesFixedIds) {
  const ListOpsTokenizer tokenizer;
  // The LRA source format: parentheses as their own tokens.
  EXPECT_EQ(tokenizer.encode("( ( ( [MAX 2 ) 9 ) ] )"), (TokenIds{3, 9, 16, 6}));
  EXPECT_EQ(tokenizer.encode("[MIN [MED [SM 0 1 ] ] ]"), (TokenIds{2, 4, 5, 7, 8, 6, 6, 6}));
  // As in LRA, parentheses are deleted wherever they are.
  EXPECT_EQ(tokenizer.encode("([MAX\t(3)\n]"), (TokenIds{3, 10, 6}));
  EXPECT_EQ(tokenizer.vocab_size(), 17);
  EXPECT_EQ(tokenizer.pad_id(), 0);
  EXPECT_EQ(tokenizer.cls_id(), 1);
}

TEST(ListOpsTokenizer, RoundTripsTheWholeVocabulary) {
  const ListOpsTokenizer tokenizer;
  TokenIds every_word;
  for (std::int32_t id = 2; id < tokenizer.vocab_size(); ++id) every_word.push_back(id);
  const std::string text = tokenizer.decode(every_word);
  EXPECT_EQ(text, "[MIN [MAX [MED [SM ] 0 1 2 3 4 5 6 7 8 9");
  EXPECT_EQ(tokenizer.encode(text), every_word);
  EXPECT_EQ(tokenizer.decode({1, 3, 9, 6, 0, 0}), "[MAX 2 ]");
}

TEST(ListOpsTokenizer, RejectsUnknownTokensAndIds) {
  const ListOpsTokenizer tokenizer;
  expect_error_containing([&] { tokenizer.encode("( [MAX 2 [FOO 3 ] ]"); },
                          {"listops tokenizer", "'[FOO'"});
  expect_error_containing([&] { tokenizer.encode("[MAX 10 ]"); }, {"'10'"});
  expect_error_containing([&] { tokenizer.encode("<pad>"); }, {"'<pad>'"});
  expect_error_containing([&] { tokenizer.decode({3, 17}); }, {"listops tokenizer", "17"});
}

// Counts: the 3, cat 2, dog 1, sat 1, a literal <unk> once, 4 lines.
constexpr const char* small_text = "the cat sat\nthe dog <unk>\n\n  the\tcat  \n";

TEST_F(WordVocabularyFiles, OrdersByCountThenBytes) {
  const auto vocabulary = WordVocabulary::build(write("train.txt", small_text));
  ASSERT_EQ(vocabulary.vocab_size(), 8);
  const std::vector<std::string> expected{"<pad>", "<cls>", "<unk>", "<eos>",
                                          "the",   "cat",   "dog",   "sat"};
  for (std::int32_t id = 0; id < vocabulary.vocab_size(); ++id)
    EXPECT_EQ(vocabulary.token(id), expected[id]) << "id " << id;
  EXPECT_EQ(vocabulary.count(vocabulary.eos_id()), 4);
  EXPECT_EQ(vocabulary.count(vocabulary.unk_id()), 1);
  EXPECT_EQ(vocabulary.count(vocabulary.id("the")), 3);
  EXPECT_EQ(vocabulary.pad_id(), 0);
  EXPECT_EQ(vocabulary.cls_id(), 1);
}

TEST_F(WordVocabularyFiles, MinCountFoldsRareWordsIntoUnk) {
  const auto vocabulary = WordVocabulary::build(write("train.txt", small_text), 2);
  ASSERT_EQ(vocabulary.vocab_size(), 6);                // specials, the, cat
  EXPECT_EQ(vocabulary.count(vocabulary.unk_id()), 3);  // <unk>, dog, sat
  EXPECT_EQ(vocabulary.id("dog"), vocabulary.unk_id());
  // Unknown words and the special names that text may not use become <unk>.
  EXPECT_EQ(vocabulary.encode("the bird\nsat <pad> <cls> <unk> <eos>"),
            (TokenIds{4, 2, 2, 2, 2, 2, 3}));
  EXPECT_EQ(vocabulary.decode({1, 4, 5, 3, 0, 4, 2, 3}), "the cat\nthe <unk>\n");
  EXPECT_NE(vocabulary.fingerprint(),
            WordVocabulary::build(write("train.txt", small_text), 1).fingerprint());
}

TEST_F(WordVocabularyFiles, SavesAndLoads) {
  const auto built = WordVocabulary::build(write("train.txt", small_text));
  const std::filesystem::path saved = directory() / "vocab.txt";
  built.save(saved);
  std::ifstream in(saved);
  std::string first_word_line;
  for (int line = 0; line < 5; ++line) std::getline(in, first_word_line);
  EXPECT_EQ(first_word_line, "the\t3");

  const auto loaded = WordVocabulary::load(saved);
  ASSERT_EQ(loaded.vocab_size(), built.vocab_size());
  for (std::int32_t id = 0; id < built.vocab_size(); ++id) {
    EXPECT_EQ(loaded.token(id), built.token(id));
    EXPECT_EQ(loaded.count(id), built.count(id));
  }
  EXPECT_EQ(loaded.fingerprint(), built.fingerprint());
  EXPECT_EQ(loaded.encode("dog sat the"), built.encode("dog sat the"));
}

TEST_F(WordVocabularyFiles, RejectsBadFiles) {
  const std::string specials = "<pad>\t0\n<cls>\t0\n<unk>\t1\n<eos>\t4\n";
  expect_error_containing([&] { WordVocabulary::load(directory() / "absent.txt"); },
                          {"word vocabulary", "absent.txt"});
  expect_error_containing([&] { WordVocabulary::load(write("no_tab.txt", specials + "the 3\n")); },
                          {"no_tab.txt:5", "token<TAB>count"});
  expect_error_containing(
      [&] { WordVocabulary::load(write("bad_count.txt", specials + "the\tmany\n")); },
      {"bad_count.txt:5", "'many'"});
  expect_error_containing(
      [&] { WordVocabulary::load(write("twice.txt", specials + "the\t3\nthe\t2\n")); },
      {"twice.txt:6", "'the' appears twice"});
  expect_error_containing([&] { WordVocabulary::load(write("order.txt", "<cls>\t0\n<pad>\t0\n")); },
                          {"order.txt:1", "'<pad>'"});
  expect_error_containing([&] { WordVocabulary::load(write("only_specials.txt", specials)); },
                          {"only_specials.txt", "no words"});
  expect_error_containing([&] { WordVocabulary::build(directory() / "absent.txt"); },
                          {"absent.txt"});
  expect_error_containing([&] { WordVocabulary::build(write("blank.txt", "\n\n")); },
                          {"blank.txt", "no word"});
  expect_error_containing([&] { WordVocabulary::build(write("t.txt", small_text), 0); },
                          {"min_count"});
  const auto vocabulary = WordVocabulary::build(write("train.txt", small_text));
  expect_error_containing([&] { vocabulary.decode({4, 8}); }, {"word vocabulary", "id 8"});
}

// A few hundred lines of English-like sentences drawn from a fixed word list
// by a fixed linear congruential sequence.
std::string sentencepiece_corpus() {
  const std::vector<std::string> words{
      "the",      "model",      "attention",  "memory",      "query",     "keys",      "values",
      "top",      "chunk",      "layer",      "training",    "language",  "long",      "range",
      "arena",    "efficient",  "gradient",   "sparse",      "softmax",   "tokens",    "of",
      "and",      "with",       "is",         "transformer", "feed",      "forward",   "network",
      "sequence", "length",     "batch",      "heads",       "dimension", "matrix",    "product",
      "scores",   "selects",    "largest",    "entries",     "row",       "column",    "backward",
      "pass",     "recomputes", "checkpoint", "inputs",      "outputs",   "benchmark", "results",
      "accuracy", "perplexity", "validation", "reading",     "writing",   "quickly",   "slowly",
      "quietly",  "bright",     "yellow",     "purple",      "zebra",     "jumped",    "over",
      "fox",      "lazy",       "dog",        "vivid",       "dream",     "exact",     "question"};
  std::string corpus;
  std::uint32_t state = 12345;
  for (int line = 0; line < 400; ++line) {
    for (int word = 0; word < 6 + line % 7; ++word) {
      state = state * 1664525u + 1013904223u;
      if (word > 0) corpus += ' ';
      corpus += words[(state >> 16) % words.size()];
    }
    corpus += '\n';
  }
  return corpus;
}

TEST_F(SentencePieceFiles, TrainsAndRoundTrips) {
  const auto corpus = write("corpus.txt", sentencepiece_corpus());
  const auto model = SentencePieceTokenizer::train(corpus, directory() / "spm", 100);
  EXPECT_EQ(model, directory() / "spm.model");
  const auto tokenizer = SentencePieceTokenizer::load(model);
  // Our models carry <pad> and <cls>, so nothing is reserved.
  EXPECT_EQ(tokenizer.piece_count(), 100);
  EXPECT_EQ(tokenizer.vocab_size(), 100);
  EXPECT_EQ(tokenizer.pad_id(), 3);
  EXPECT_EQ(tokenizer.cls_id(), 4);
  EXPECT_EQ(tokenizer.eos_id(), 2);

  for (const std::string text : {"the sparse attention of long range tokens",
                                 "efficient memory with top chunk gradient", "gradients"}) {
    const TokenIds ids = tokenizer.encode(text);
    EXPECT_FALSE(ids.empty());
    for (const std::int32_t id : ids) EXPECT_TRUE(id >= 5 && id < 100) << text;
    EXPECT_EQ(tokenizer.decode(ids), text);
  }
  TokenIds with_specials = tokenizer.encode("the model");
  with_specials.insert(with_specials.begin(), tokenizer.cls_id());
  with_specials.push_back(tokenizer.eos_id());
  with_specials.push_back(tokenizer.pad_id());
  EXPECT_EQ(tokenizer.decode(with_specials), "the model");
  // The same model loaded twice has one fingerprint; another model another.
  EXPECT_EQ(SentencePieceTokenizer::load(model).fingerprint(), tokenizer.fingerprint());
  SentencePieceTrainOptions bpe_options;
  bpe_options.model_type = "bpe";
  const auto bpe = SentencePieceTokenizer::train(corpus, directory() / "bpe", 100, bpe_options);
  EXPECT_NE(SentencePieceTokenizer::load(bpe).fingerprint(), tokenizer.fingerprint());
}

TEST_F(SentencePieceFiles, ReservesIdsTheModelLacks) {
  const auto corpus = write("corpus.txt", sentencepiece_corpus());
  SentencePieceTrainOptions options;
  options.trainer_arguments = {{"pad_id", "-1"}, {"control_symbols", ""}};
  const auto tokenizer = SentencePieceTokenizer::load(
      SentencePieceTokenizer::train(corpus, directory() / "m", 90, options));
  EXPECT_EQ(tokenizer.piece_count(), 90);
  EXPECT_EQ(tokenizer.pad_id(), 90);
  EXPECT_EQ(tokenizer.cls_id(), 91);
  EXPECT_EQ(tokenizer.eos_id(), 2);
  EXPECT_EQ(tokenizer.vocab_size(), 92);
  TokenIds ids = tokenizer.encode("the model");
  ids.insert(ids.begin(), 91);
  ids.push_back(90);
  EXPECT_EQ(tokenizer.decode(ids), "the model");
  expect_error_containing([&] { tokenizer.decode({92}); }, {"sentencepiece", "92"});
}

TEST_F(SentencePieceFiles, ErrorsNameTheFile) {
  expect_error_containing([&] { SentencePieceTokenizer::load(directory() / "absent.model"); },
                          {"sentencepiece", "absent.model"});
  expect_error_containing([&] { SentencePieceTokenizer::load(write("junk.model", "not a model")); },
                          {"sentencepiece", "junk.model"});
  expect_error_containing(
      [&] { SentencePieceTokenizer::train(directory() / "absent.txt", directory() / "m", 100); },
      {"sentencepiece", "absent.txt"});
}

}  // namespace
}  // namespace topkformer::data
