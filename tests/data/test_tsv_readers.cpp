// The TSV readers on small files written here, in each format, and on the
// shared IMDb files when they are present.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "data/temporary_folder.h"
#include "test_util.h"
#include "topkformer/core/error.h"
#include "topkformer/data/data_root.h"
#include "topkformer/data/tsv_readers.h"

namespace topkformer::data {
namespace {

class TsvReaders : public testing::TemporaryFolderTest {};

TEST_F(TsvReaders, ImdbReadsLabelsAndTexts) {
  const auto path =
      write("imdb.tsv", "label\ttext\n1\tA fine film.\n0\tDull <br /> \"really\".\r\n");
  const TextRecords read = read_imdb_tsv(path);
  ASSERT_EQ(read.records.size(), 2u);
  EXPECT_EQ(read.records[0].text, "A fine film.");
  EXPECT_EQ(read.records[0].label, 1);
  EXPECT_EQ(read.records[1].text, "Dull <br /> \"really\".");
  EXPECT_EQ(read.records[1].label, 0);
  EXPECT_EQ(read.skipped_lines, 0);
}

TEST_F(TsvReaders, ListOpsReadsSourceAndTarget) {
  const auto path = write("basic_test.tsv",
                          "Source\tTarget\r\n( ( ( [MAX 2 ) 9 ) ] )\t9\r\n( ( [SM 3 ) ] )\t3\r\n");
  const TextRecords read = read_listops_tsv(path);
  ASSERT_EQ(read.records.size(), 2u);
  EXPECT_EQ(read.records[0].text, "( ( ( [MAX 2 ) 9 ) ] )");
  EXPECT_EQ(read.records[0].label, 9);
  EXPECT_EQ(read.records[1].label, 3);
}

TEST_F(TsvReaders, AanReadsTheOfficialFormat) {
  const auto path = write("new_aan_pairs.eval.tsv",
                          "1.0\tP09-1043\tD07-1031\tb'Parsing text.'\tb'A \"cited\" paper.'\n"
                          "0\tW06-3816\tE06-1051\tFirst abstract\tSecond abstract\n");
  const TextPairRecords read = read_aan_tsv(path);
  ASSERT_EQ(read.records.size(), 2u);
  EXPECT_EQ(read.records[0].label, 1);
  EXPECT_EQ(read.records[0].id1, "P09-1043");
  EXPECT_EQ(read.records[0].id2, "D07-1031");
  EXPECT_EQ(read.records[0].text1, "b'Parsing text.'");
  EXPECT_EQ(read.records[0].text2, "b'A \"cited\" paper.'");
  EXPECT_EQ(read.records[1].label, 0);
  EXPECT_EQ(read.records[1].text2, "Second abstract");
}

TEST_F(TsvReaders, BadLinesNameFileAndLine) {
  const auto columns = write("columns.tsv", "label\ttext\n1\tgood\n0\tone\ttab too many\n");
  testing::expect_error_containing([&] { read_imdb_tsv(columns); },
                                   {columns.string() + ":3:", "expected 2", "found 3"});
  const auto letter = write("letter.tsv", "label\ttext\n1\tgood\n\n0\tgood\nx\tbad label\n");
  testing::expect_error_containing([&] { read_imdb_tsv(letter); },
                                   {letter.string() + ":5:", "'x' is not an integer"});
  const auto fraction = write("fraction.tsv", "label\ttext\n0.5\thalf\n");
  testing::expect_error_containing([&] { read_imdb_tsv(fraction); },
                                   {fraction.string() + ":2:", "not an integer"});
  const auto range = write("range.tsv", "label\ttext\n2\tthree classes?\n");
  testing::expect_error_containing([&] { read_imdb_tsv(range); },
                                   {range.string() + ":2:", "label 2 is outside 0..1"});
  const auto listops = write("listops.tsv", "Source\tTarget\n[MAX 2 ]\t10\n");
  testing::expect_error_containing([&] { read_listops_tsv(listops); },
                                   {listops.string() + ":2:", "outside 0..9"});
  const auto aan = write("aan.tsv", "1\ta\tb\ttext one\ttext two\n1\ta\tb\tonly one text\n");
  testing::expect_error_containing([&] { read_aan_tsv(aan); },
                                   {aan.string() + ":2:", "expected 5", "found 4"});
}

TEST_F(TsvReaders, SkipBadLinesCountsThem) {
  const auto path = write("mixed.tsv",
                          "label\ttext\n1\tkeep one\n0\tone\ttab too many\nx\tbad label\n"
                          "7\tout of range\n0\tkeep two\n");
  const TextRecords read = read_imdb_tsv(path, {.skip_bad_lines = true});
  EXPECT_EQ(read.skipped_lines, 3);
  ASSERT_EQ(read.records.size(), 2u);
  EXPECT_EQ(read.records[0].text, "keep one");
  EXPECT_EQ(read.records[1].text, "keep two");

  const auto aan = write("aan.tsv", "1\ta\tb\tx\ty\n-1\ta\tb\tx\ty\n1\ta\tb\n");
  const TextPairRecords pairs = read_aan_tsv(aan, {.skip_bad_lines = true});
  EXPECT_EQ(pairs.skipped_lines, 2);
  EXPECT_EQ(pairs.records.size(), 1u);
}

TEST_F(TsvReaders, ListOpsExpressionsWithUnknownTokensAreBadLines) {
  // They were read, and the tokenizer failed later without file or line,
  // whatever skip_bad_lines said.
  const auto path = write("listops.tsv",
                          "Source\tTarget\n( [MAX 2 ) 9 ] )\t9\n( [MAX 2 ) nine ] )\t9\n"
                          "[MIN 3 <pad> ]\t3\n[SM 3 ]\t3\n");
  testing::expect_error_containing([&] { read_listops_tsv(path); },
                                   {path.string() + ":3: ", "unknown ListOps token 'nine'"});
  const TextRecords read = read_listops_tsv(path, {.skip_bad_lines = true});
  EXPECT_EQ(read.skipped_lines, 2);
  ASSERT_EQ(read.records.size(), 2u);
  EXPECT_EQ(read.records[0].text, "( [MAX 2 ) 9 ] )");
  EXPECT_EQ(read.records[1].text, "[SM 3 ]");
}

TEST_F(TsvReaders, ControlBytesInErrorsAreEscaped) {
  // A raw CR sent the cursor back over the message, a NUL cut it short.
  const auto path =
      write("control.tsv", std::string("label\ttext\n\x1b[2J\r\0\x7f\xc3\xa9\tt\n", 23));
  const std::string message = [&] {
    try {
      read_imdb_tsv(path);
    } catch (const Error& error) {
      return std::string(error.what());
    }
    return std::string("no error");
  }();
  EXPECT_NE(message.find("label '\\x1b[2J\\r\\x00\\x7f\xc3\xa9' is not an integer"),
            std::string::npos)
      << message;
  for (const char c : message) {
    EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20 || c == 0x7f) << message;
  }
}

TEST_F(TsvReaders, FilesWithoutRecordsAreErrors) {
  const auto empty = write("empty.tsv", "");
  testing::expect_error_containing([&] { read_imdb_tsv(empty); }, {empty.string(), "no records"});
  testing::expect_error_containing([&] { read_aan_tsv(empty); }, {empty.string(), "no records"});
  const auto header_only = write("header.tsv", "Source\tTarget\r\n");
  testing::expect_error_containing([&] { read_listops_tsv(header_only); },
                                   {header_only.string(), "no records"});
  const auto all_bad = write("all_bad.tsv", "label\ttext\nx\tbad\n");
  testing::expect_error_containing([&] { read_imdb_tsv(all_bad, {.skip_bad_lines = true}); },
                                   {all_bad.string(), "no records", "1 bad lines skipped"});
}

TEST_F(TsvReaders, MissingFileAndWrongHeaderAreErrors) {
  const auto missing = directory_ / "missing.tsv";
  testing::expect_error_containing([&] { read_imdb_tsv(missing); }, {missing.string()});
  testing::expect_error_containing([&] { read_imdb_tsv(directory_); }, {directory_.string()});
  const auto swapped = write("swapped.tsv", "text\tlabel\nfine\t1\n");
  testing::expect_error_containing([&] { read_imdb_tsv(swapped, {.skip_bad_lines = true}); },
                                   {swapped.string() + ":1:", "expected the header"});
}

void expect_imdb_split(const std::filesystem::path& path) {
  const TextRecords read = read_imdb_tsv(path);
  EXPECT_EQ(read.records.size(), 25000u);
  EXPECT_EQ(read.skipped_lines, 0);
  std::int64_t positives = 0;
  for (const TextRecord& record : read.records) positives += record.label;
  EXPECT_EQ(positives, 12500);
}

TEST(TsvReadersRealData, ImdbTrainHas25000ReviewsHalfPositive) {
  const std::filesystem::path path = data_file("imdb/train.tsv");
  TKF_SKIP_UNLESS_DATA_FILE(path);
  expect_imdb_split(path);
}

TEST(TsvReadersRealData, ImdbTestHas25000ReviewsHalfPositive) {
  const std::filesystem::path path = data_file("imdb/test.tsv");
  TKF_SKIP_UNLESS_DATA_FILE(path);
  expect_imdb_split(path);
}

}  // namespace
}  // namespace topkformer::data
