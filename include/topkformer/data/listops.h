// ListOps (Nangia & Bowman 2018) as the Long Range Arena generates it: nested
// MIN, MAX, MED (median) and SM (sum modulo 10) over single digits, written
// in LRA's text form, e.g. `( ( ( [MAX 2 ) 9 ) ] )` (= 9).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

// Note [ListOps generation]
// The rules follow LRA's lra_benchmarks/data/listops.py; the random numbers
// are Philox words, so a seed gives the same files on every machine.

namespace topkformer::data {

struct ListOpsOptions {
  // Length in tokens as LRA counts them: every operator, digit and `]`
  // (parentheses are not tokens). LRA keeps an expression only when
  // min_length < length < max_length, and so do we.
  std::int64_t min_length = 500;
  std::int64_t max_length = 2000;
  // The root is at depth 1 and a node at max_depth is always a digit, so
  // operators nest at most max_depth - 1 deep. Shallower than max_depth, a node is an
  // operator with probability 1/4, else a digit (LRA's VALUE_P = 0.25 is the
  // threshold a uniform draw must exceed to give a digit).
  int max_depth = 10;
  int max_args = 10;  // each operator takes 2..max_args arguments
};

struct ListOpsExample {
  std::string source;  // the expression in LRA's text form
  int target = 0;      // its value, 0..9
};

// `count` expressions drawn from the Philox stream `seed`, each redrawn until
// its length is inside the bounds. Throws Error for options no expression can
// meet, or when a million draws in a row miss the bounds.
std::vector<ListOpsExample> generate_listops(std::int64_t count, std::uint64_t seed,
                                             const ListOpsOptions& options = {});

// The value of an expression in LRA's text form (parentheses are checked for
// balance and otherwise ignored). MED of an even count is the mean of the two
// middle values rounded down, as LRA's int(np.median(...)). Throws Error
// naming the offending token for anything malformed.
int evaluate_listops(std::string_view source);

// Writes the header `Source<TAB>Target` and the rows of generate_listops(count,
// seed, options), each row ended by CRLF as Python's csv.writer (which LRA
// uses) ends it. Examples are written as they are drawn, never all held.
void write_listops_tsv(const std::filesystem::path& path, std::int64_t count, std::uint64_t seed,
                       const ListOpsOptions& options = {});

struct ListOpsSplitSizes {
  std::int64_t train = 96000;  // LRA's sizes
  std::int64_t val = 2000;
  std::int64_t test = 2000;
};

// The seed of split `index` (0 train, 1 val, 2 test) derived from `seed`.
std::uint64_t listops_split_seed(std::uint64_t seed, int index);

// Writes directory/basic_{train,val,test}.tsv (creating the directory), each
// split generated from its own seed; returns the paths written.
std::vector<std::filesystem::path> write_listops_splits(const std::filesystem::path& directory,
                                                        std::uint64_t seed,
                                                        const ListOpsSplitSizes& sizes,
                                                        const ListOpsOptions& options = {});

}  // namespace topkformer::data
