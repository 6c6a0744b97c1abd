#include "topkformer/data/listops.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <limits>
#include <numeric>
#include <optional>

#include "topkformer/core/error.h"
#include "topkformer/core/rng.h"
#include "topkformer/data/batcher.h"

namespace topkformer::data {

namespace {

enum class Operator { min, max, median, sum_mod };
constexpr std::array<std::string_view, 4> operator_names = {"[MIN", "[MAX", "[MED", "[SM"};

// Bounds that are reachable but almost never hit (say min_length 10^7) must
// end with an error rather than spin forever.
constexpr std::int64_t max_draws_per_example = 1'000'000;

// The longest expression the depth and argument limits allow (saturating).
std::int64_t longest_expression(const ListOpsOptions& options) {
  std::int64_t length = 1;  // a digit at max_depth
  for (int depth = options.max_depth - 1; depth >= 1; --depth) {
    if (length > (std::numeric_limits<std::int64_t>::max() - 2) / options.max_args)
      return std::numeric_limits<std::int64_t>::max();
    length = 2 + options.max_args * length;
  }
  return length;
}

void check_request(std::int64_t count, const ListOpsOptions& options) {
  TKF_CHECK(count >= 0, "ListOps: the number of examples must be non-negative, got ", count);
  TKF_CHECK(options.max_depth >= 1, "ListOps: max_depth must be at least 1, got ",
            options.max_depth);
  TKF_CHECK(options.max_args >= 2, "ListOps: max_args must be at least 2, got ", options.max_args);
  TKF_CHECK(options.min_length >= 0, "ListOps: min_length must be non-negative, got ",
            options.min_length);
  TKF_CHECK(options.max_length > options.min_length + 1,
            "ListOps: no length lies strictly between min_length ", options.min_length,
            " and max_length ", options.max_length);
  const std::int64_t longest = longest_expression(options);
  TKF_CHECK(longest > options.min_length, "ListOps: max_depth ", options.max_depth,
            " and max_args ", options.max_args, " allow at most ", longest,
            " tokens, not more than min_length ", options.min_length);
}

// Draws expressions as LRA's generate_tree does and writes them as its
// to_string does: an operator with arguments a, b, c is the left-nested pairs
// ((((op a) b) c) ]), each pair in parentheses.
class ExpressionSampler {
 public:
  ExpressionSampler(const ListOpsOptions& options, Generator& generator)
      : options_(options), generator_(generator) {}

  // The next expression, or nothing when its length misses the bounds. A
  // draw stops as soon as it reaches max_length tokens: it will be rejected,
  // and building the rest of a large tree would only cost time.
  std::optional<std::string> draw() {
    text_.clear();
    length_ = 0;
    if (!append_node(1) || length_ <= options_.min_length) return std::nullopt;
    return text_;
  }

 private:
  // Counts one token; false once the expression is too long to keep.
  bool count_token() { return ++length_ < options_.max_length; }

  bool append_node(int depth) {
    const bool is_operator = depth < options_.max_depth && uniform_below(generator_, 4) == 0;
    if (!is_operator) {
      text_ += static_cast<char>('0' + uniform_below(generator_, 10));
      return count_token();
    }
    // LRA draws the operator after the arguments; the draws are independent,
    // so drawing it first (to write it first) gives the same distribution.
    const auto arguments =
        2 + uniform_below(generator_, static_cast<std::uint32_t>(options_.max_args - 1));
    const std::string_view name = operator_names[uniform_below(generator_, 4)];
    for (std::uint32_t pair = 0; pair <= arguments; ++pair) text_ += "( ";
    text_ += name;
    if (!count_token()) return false;
    for (std::uint32_t argument = 0; argument < arguments; ++argument) {
      text_ += ' ';
      if (!append_node(depth + 1)) return false;
      text_ += " )";
    }
    text_ += " ] )";
    return count_token();
  }

  const ListOpsOptions& options_;
  Generator& generator_;
  std::string text_;
  std::int64_t length_ = 0;
};

int apply_operator(Operator op, std::vector<int> arguments) {
  switch (op) {
    case Operator::min:
      return *std::min_element(arguments.begin(), arguments.end());
    case Operator::max:
      return *std::max_element(arguments.begin(), arguments.end());
    case Operator::median: {
      std::sort(arguments.begin(), arguments.end());
      const std::size_t middle = arguments.size() / 2;
      if (arguments.size() % 2 == 1) return arguments[middle];
      // int(np.median(...)): the mean of the middle two, truncated.
      return (arguments[middle - 1] + arguments[middle]) / 2;
    }
    case Operator::sum_mod:
      return std::accumulate(arguments.begin(), arguments.end(), 0) % 10;
  }
  throw Error("evaluate_listops: unknown operator");
}

std::vector<std::string_view> split_on_spaces(std::string_view text) {
  std::vector<std::string_view> tokens;
  std::size_t start = 0;
  while (start < text.size()) {
    if (text[start] == ' ') {
      ++start;
      continue;
    }
    const std::size_t end = std::min(text.find(' ', start), text.size());
    tokens.push_back(text.substr(start, end - start));
    start = end;
  }
  return tokens;
}

// Hands `count` examples of the stream `seed` to `take`, one at a time, so a
// writer holds one expression, not a split (LRA's train split is 600 MB).
template <typename Take>
void for_each_example(std::int64_t count, std::uint64_t seed, const ListOpsOptions& options,
                      Take take) {
  check_request(count, options);
  Generator generator(seed);
  ExpressionSampler sampler(options, generator);
  for (std::int64_t example = 0; example < count; ++example) {
    std::optional<std::string> source;
    for (std::int64_t draw = 0; !source; ++draw) {
      TKF_CHECK(draw < max_draws_per_example, "generate_listops: ", max_draws_per_example,
                " draws in a row missed min_length ", options.min_length, " < length < max_length ",
                options.max_length, " (max_depth ", options.max_depth, ", max_args ",
                options.max_args, ")");
      source = sampler.draw();
    }
    const int target = evaluate_listops(*source);
    take(ListOpsExample{std::move(*source), target});
  }
}

}  // namespace

std::vector<ListOpsExample> generate_listops(std::int64_t count, std::uint64_t seed,
                                             const ListOpsOptions& options) {
  std::vector<ListOpsExample> examples;
  examples.reserve(static_cast<std::size_t>(std::max<std::int64_t>(count, 0)));
  for_each_example(count, seed, options,
                   [&](ListOpsExample example) { examples.push_back(std::move(example)); });
  return examples;
}

int evaluate_listops(std::string_view source) {
  struct Application {
    Operator op;
    std::vector<int> arguments;
  };
  std::vector<Application> open_operators;
  std::optional<int> result;
  std::int64_t open_parentheses = 0;
  const std::vector<std::string_view> tokens = split_on_spaces(source);
  for (std::size_t position = 0; position < tokens.size(); ++position) {
    const std::string_view token = tokens[position];
    const auto fail = [&](const char* what) {
      return Error(
          detail::concat("evaluate_listops: ", what, " at token ", position + 1, " '", token, "'"));
    };
    if (token == "(") {
      ++open_parentheses;
      continue;
    }
    if (token == ")") {
      if (--open_parentheses < 0) throw fail("unmatched ')'");
      continue;
    }
    const auto name = std::find(operator_names.begin(), operator_names.end(), token);
    if (name != operator_names.end()) {
      if (result) throw fail("operator after the complete expression");
      open_operators.push_back({static_cast<Operator>(name - operator_names.begin()), {}});
      continue;
    }
    int value = 0;
    if (token == "]") {
      if (open_operators.empty()) throw fail("']' without an operator");
      if (open_operators.back().arguments.empty()) throw fail("operator without arguments");
      value = apply_operator(open_operators.back().op, std::move(open_operators.back().arguments));
      open_operators.pop_back();
    } else if (token.size() == 1 && token[0] >= '0' && token[0] <= '9') {
      value = token[0] - '0';
    } else {
      throw fail("unknown token");
    }
    if (!open_operators.empty()) {
      open_operators.back().arguments.push_back(value);
    } else {
      if (result) throw fail("a second top-level value");
      result = value;
    }
  }
  TKF_CHECK(open_operators.empty(), "evaluate_listops: ", open_operators.size(),
            " operator(s) without ']'");
  TKF_CHECK(open_parentheses == 0, "evaluate_listops: ", open_parentheses, " unclosed '('");
  TKF_CHECK(result.has_value(), "evaluate_listops: empty expression");
  return *result;
}

void write_listops_tsv(const std::filesystem::path& path, std::int64_t count, std::uint64_t seed,
                       const ListOpsOptions& options) {
  check_request(count, options);  // before a file is created
  std::ofstream file(path, std::ios::binary);
  TKF_CHECK(file.is_open(), path.string(), ": cannot open for writing");
  file << "Source\tTarget\r\n";
  for_each_example(count, seed, options, [&](const ListOpsExample& example) {
    file << example.source << '\t' << example.target << "\r\n";
  });
  file.close();
  TKF_CHECK(!file.fail(), path.string(), ": write failed");
}

std::uint64_t listops_split_seed(std::uint64_t seed, int index) {
  const PhiloxCounter words = philox_block(seed, static_cast<std::uint64_t>(index));
  return (std::uint64_t{words[0]} << 32) | words[1];
}

std::vector<std::filesystem::path> write_listops_splits(const std::filesystem::path& directory,
                                                        std::uint64_t seed,
                                                        const ListOpsSplitSizes& sizes,
                                                        const ListOpsOptions& options) {
  const std::array<std::pair<const char*, std::int64_t>, 3> splits = {
      {{"basic_train.tsv", sizes.train},
       {"basic_val.tsv", sizes.val},
       {"basic_test.tsv", sizes.test}}};
  for (const auto& [name, count] : splits) check_request(count, options);  // before writing
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  TKF_CHECK(!error, directory.string(), ": cannot create directory: ", error.message());
  std::vector<std::filesystem::path> written;
  for (std::size_t index = 0; index < splits.size(); ++index) {
    const auto& [name, count] = splits[index];
    written.push_back(directory / name);
    write_listops_tsv(written.back(), count, listops_split_seed(seed, static_cast<int>(index)),
                      options);
  }
  return written;
}

}  // namespace topkformer::data
