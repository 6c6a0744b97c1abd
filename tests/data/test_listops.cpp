// The ListOps generator checked against an independent reading of LRA's
// format: the text is parsed as the nested pairs LRA's to_string writes and
// evaluated as LRA's to_value does, not with the library's evaluator.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <variant>

#include "data/temporary_folder.h"
#include "test_util.h"
#include "topkformer/data/listops.h"
#include "topkformer/data/tsv_readers.h"

namespace topkformer::data {
namespace {

// A node of LRA's tuple tree: an atom (operator name, digit or "]") or a pair.
struct PairNode {
  std::string atom;
  std::unique_ptr<PairNode> left, right;
};

std::unique_ptr<PairNode> parse_pairs(const std::vector<std::string>& tokens, std::size_t& next) {
  auto node = std::make_unique<PairNode>();
  if (next >= tokens.size()) throw std::runtime_error("expression ends early");
  if (tokens[next] != "(") {
    node->atom = tokens[next++];
    return node;
  }
  ++next;
  node->left = parse_pairs(tokens, next);
  node->right = parse_pairs(tokens, next);
  if (next >= tokens.size() || tokens[next] != ")") throw std::runtime_error("missing ')'");
  ++next;
  return node;
}

std::string to_lra_string(const PairNode& node) {
  if (!node.left) return node.atom;
  return "( " + to_lra_string(*node.left) + " " + to_lra_string(*node.right) + " )";
}

// What LRA's to_value returns for a subtree, plus the facts the tests check.
struct Evaluated {
  struct Digit {
    int value;
    int height;  // a digit is a node of height 1
  };
  struct Unsaturated {  // an operator with the arguments seen so far
    std::string op;
    std::vector<int> arguments;
    int tallest_argument = 0;
  };
  std::variant<std::string, Digit, Unsaturated> value;  // string: a bare atom
};

struct ExpressionFacts {
  int value = -1;
  int height = 0;
  std::size_t fewest_arguments = 1000, most_arguments = 0;
  std::int64_t length = 0;  // atoms: operators, digits and "]"
};

int reference_apply(const std::string& op, std::vector<int> arguments) {
  std::sort(arguments.begin(), arguments.end());
  if (op == "[MIN") return arguments.front();
  if (op == "[MAX") return arguments.back();
  if (op == "[SM") {
    int sum = 0;
    for (int argument : arguments) sum += argument;
    return sum % 10;
  }
  if (op == "[MED") {
    const std::size_t n = arguments.size();
    const double median =
        n % 2 == 1 ? arguments[n / 2] : (arguments[n / 2 - 1] + arguments[n / 2]) / 2.0;
    return static_cast<int>(median);  // int(np.median(...))
  }
  throw std::runtime_error("unknown operator " + op);
}

Evaluated to_value(const PairNode& node, ExpressionFacts& facts) {
  if (!node.left) {
    ++facts.length;
    if (node.atom.size() == 1 && std::isdigit(static_cast<unsigned char>(node.atom[0])))
      return {Evaluated::Digit{node.atom[0] - '0', 1}};
    return {node.atom};
  }
  const Evaluated left = to_value(*node.left, facts);
  const Evaluated right = to_value(*node.right, facts);
  const auto* right_digit = std::get_if<Evaluated::Digit>(&right.value);
  if (const auto* op = std::get_if<std::string>(&left.value)) {
    if (!right_digit) throw std::runtime_error("operator without a first argument");
    return {Evaluated::Unsaturated{*op, {right_digit->value}, right_digit->height}};
  }
  auto partial = std::get<Evaluated::Unsaturated>(left.value);
  if (const auto* end = std::get_if<std::string>(&right.value); end && *end == "]") {
    facts.fewest_arguments = std::min(facts.fewest_arguments, partial.arguments.size());
    facts.most_arguments = std::max(facts.most_arguments, partial.arguments.size());
    return {Evaluated::Digit{reference_apply(partial.op, partial.arguments),
                             partial.tallest_argument + 1}};
  }
  if (!right_digit) throw std::runtime_error("argument is not a value");
  partial.arguments.push_back(right_digit->value);
  partial.tallest_argument = std::max(partial.tallest_argument, right_digit->height);
  return {partial};
}

ExpressionFacts reference_facts(const std::string& source) {
  std::vector<std::string> tokens;
  std::istringstream words(source);
  for (std::string word; words >> word;) tokens.push_back(word);
  std::size_t next = 0;
  const std::unique_ptr<PairNode> root = parse_pairs(tokens, next);
  EXPECT_EQ(next, tokens.size()) << "trailing tokens in " << source;
  EXPECT_EQ(to_lra_string(*root), source) << "not written as LRA's to_string writes it";
  ExpressionFacts facts;
  const Evaluated result = to_value(*root, facts);
  const auto& digit = std::get<Evaluated::Digit>(result.value);
  facts.value = digit.value;
  facts.height = digit.height;
  return facts;
}

void expect_within_limits(const std::vector<ListOpsExample>& examples,
                          const ListOpsOptions& options) {
  for (const ListOpsExample& example : examples) {
    const ExpressionFacts facts = reference_facts(example.source);
    EXPECT_GT(facts.length, options.min_length);
    EXPECT_LT(facts.length, options.max_length);
    EXPECT_LE(facts.height, options.max_depth);
    EXPECT_GE(facts.fewest_arguments, 2u);
    EXPECT_LE(facts.most_arguments, static_cast<std::size_t>(options.max_args));
    EXPECT_EQ(example.target, facts.value) << example.source;
  }
}

std::string file_bytes(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), {});
}

class ListOpsFiles : public testing::TemporaryFolderTest {};

const ListOpsOptions small_options{20, 200, 4, 3};

TEST(ListOpsGenerator, DefaultOptionsGiveLraLengthsDepthsAndLabels) {
  const ListOpsOptions options;
  const auto examples = generate_listops(30, 1, options);
  ASSERT_EQ(examples.size(), 30u);
  expect_within_limits(examples, options);
}

TEST(ListOpsGenerator, SmallLimitsAreRespectedAndReached) {
  const auto examples = generate_listops(300, 2, small_options);
  expect_within_limits(examples, small_options);
  int tallest = 0;
  std::size_t most_arguments = 0;
  std::vector<int> label_counts(10, 0);
  for (const ListOpsExample& example : examples) {
    const ExpressionFacts facts = reference_facts(example.source);
    tallest = std::max(tallest, facts.height);
    most_arguments = std::max(most_arguments, facts.most_arguments);
    ++label_counts[example.target];
  }
  EXPECT_EQ(tallest, small_options.max_depth);
  EXPECT_EQ(most_arguments, static_cast<std::size_t>(small_options.max_args));
  EXPECT_GE(std::count_if(label_counts.begin(), label_counts.end(), [](int n) { return n > 0; }),
            8);
}

TEST(ListOpsGenerator, SeedGivesTheSameExpressionsOnEveryMachine) {
  // Pinned: Philox words and exact integer draws leave nothing to the platform.
  const auto examples = generate_listops(2, 0, {3, 30, 3, 3});
  ASSERT_EQ(examples.size(), 2u);
  EXPECT_EQ(examples[0].source, "( ( ( [MIN 7 ) 6 ) ] )");
  EXPECT_EQ(examples[0].target, 6);
  EXPECT_EQ(examples[1].source, "( ( ( ( [MAX 8 ) 0 ) 0 ) ] )");
  EXPECT_EQ(examples[1].target, 8);
}

TEST(ListOpsGenerator, RejectsOptionsNoExpressionMeets) {
  testing::expect_error_containing(
      [] {
        generate_listops(1, 0, {10, 11, 10, 10});
      },
      {"strictly between"});
  testing::expect_error_containing(
      [] {
        generate_listops(1, 0, {100, 1000, 2, 2});
      },
      {"at most 4 tokens"});
  testing::expect_error_containing([] { generate_listops(1, 0, {10, 100, 5, 1}); }, {"max_args"});
}

TEST(ListOpsEvaluator, KnownValues) {
  EXPECT_EQ(evaluate_listops("( ( ( [MAX 2 ) 9 ) ] )"), 9);
  EXPECT_EQ(evaluate_listops("( ( ( ( [MIN 4 ) 7 ) 5 ) ] )"), 4);
  EXPECT_EQ(evaluate_listops("[SM 7 8 9 ]"), 4);
  EXPECT_EQ(evaluate_listops("[MED 9 0 4 ]"), 4);
  EXPECT_EQ(evaluate_listops("[MED 1 2 ]"), 1);  // 1.5 truncated, as int(np.median)
  EXPECT_EQ(evaluate_listops("[MED 8 2 5 3 ]"), 4);
  EXPECT_EQ(evaluate_listops("[MIN 3 [MAX 1 7 ] [SM 5 5 ] ]"), 0);
  EXPECT_EQ(evaluate_listops("6"), 6);
}

TEST(ListOpsEvaluator, RejectsMalformedExpressions) {
  testing::expect_error_containing([] { evaluate_listops("[FOO 1 ]"); }, {"unknown token"});
  testing::expect_error_containing([] { evaluate_listops("( [MIN 1 ]"); }, {"unclosed"});
  testing::expect_error_containing([] { evaluate_listops("[MIN 1 ] )"); }, {"unmatched"});
  testing::expect_error_containing([] { evaluate_listops("[MIN 1"); }, {"without ']'"});
  testing::expect_error_containing([] { evaluate_listops("]"); }, {"without an operator"});
  testing::expect_error_containing([] { evaluate_listops("[MIN ]"); }, {"without arguments"});
  testing::expect_error_containing([] { evaluate_listops("1 2"); }, {"second top-level"});
  testing::expect_error_containing([] { evaluate_listops("12"); }, {"unknown token", "'12'"});
  testing::expect_error_containing([] { evaluate_listops(""); }, {"empty"});
}

TEST_F(ListOpsFiles, SameSeedSameBytesOtherSeedOtherBytes) {
  write_listops_tsv(directory_ / "a.tsv", 40, 7, small_options);
  write_listops_tsv(directory_ / "b.tsv", 40, 7, small_options);
  write_listops_tsv(directory_ / "c.tsv", 40, 8, small_options);
  const std::string a = file_bytes(directory_ / "a.tsv");
  EXPECT_EQ(a.rfind("Source\tTarget\r\n", 0), 0u);
  EXPECT_EQ(a, file_bytes(directory_ / "b.tsv"));
  EXPECT_NE(a, file_bytes(directory_ / "c.tsv"));
}

TEST_F(ListOpsFiles, WritesTheThreeSplitsTheCommandWrites) {
  const ListOpsSplitSizes sizes{20, 5, 6};
  const auto written = write_listops_splits(directory_ / "listops", 5, sizes, small_options);
  ASSERT_EQ(written.size(), 3u);
  EXPECT_EQ(written[0], directory_ / "listops" / "basic_train.tsv");
  EXPECT_EQ(written[1], directory_ / "listops" / "basic_val.tsv");
  EXPECT_EQ(written[2], directory_ / "listops" / "basic_test.tsv");

  const std::int64_t counts[] = {sizes.train, sizes.val, sizes.test};
  std::vector<std::string> first_sources;
  for (int split = 0; split < 3; ++split) {
    const TextRecords read = read_listops_tsv(written[split]);
    const auto expected =
        generate_listops(counts[split], listops_split_seed(5, split), small_options);
    ASSERT_EQ(read.records.size(), expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(read.records[i].text, expected[i].source);
      EXPECT_EQ(read.records[i].label, expected[i].target);
    }
    first_sources.push_back(read.records.front().text);
  }
  EXPECT_NE(first_sources[0], first_sources[1]);
  EXPECT_NE(first_sources[1], first_sources[2]);
}

}  // namespace
}  // namespace topkformer::data
