// One name table per enumerated choice (ggml's GGML_OP_NAME[GGML_OP_COUNT]):
// See Note [name tables].
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "topkformer/core/error.h"

// Note [name tables]
// an enum ends in `count`, its names are one `constexpr NameTable` beside it,
// and `static_assert(names_match<Enum>(table))` ties the two. Parsing, naming,
// error messages, the config schema and `topkformer config --list-choices`
// all read that table, so a new choice is one line in it (and one enumerator).

namespace topkformer {

// Declare a table as `std::to_array<std::string_view>({"a", "b"})`, so that
// its size is the number of names written.
template <std::size_t N>
using NameTable = std::array<std::string_view, N>;

// Whether `names` has one name per value of Enum (those before Enum::count),
// none of them empty or repeated.
template <typename Enum, std::size_t N>
constexpr bool names_match(const NameTable<N>& names) {
  if (N != std::size_t(Enum::count)) return false;
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i].empty()) return false;
    for (std::size_t j = 0; j < i; ++j) {
      if (names[i] == names[j]) return false;
    }
  }
  return true;
}

// Every value of Enum, in order: `for (AttentionKind kind : all_values<AttentionKind>())`.
template <typename Enum>
constexpr std::array<Enum, std::size_t(Enum::count)> all_values() {
  std::array<Enum, std::size_t(Enum::count)> values{};
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = Enum(i);
  return values;
}

// The names as strings, in order (for lists that want std::string).
template <std::size_t N>
std::vector<std::string> name_strings(const NameTable<N>& names) {
  return {names.begin(), names.end()};
}

// "a|b|c", as errors and `config --list-choices` write a choice's names.
template <std::size_t N>
std::string join_names(const NameTable<N>& names, std::string_view separator = "|") {
  std::string joined;
  for (std::size_t i = 0; i < N; ++i) {
    if (i > 0) joined += separator;
    joined += names[i];
  }
  return joined;
}

// The name of `value`; "?" for a value outside the table.
template <typename Enum, std::size_t N>
std::string enum_name(const NameTable<N>& names, Enum value) {
  const auto index = std::size_t(value);
  return index < N ? std::string(names[index]) : "?";
}

// The value named `name`. Otherwise throws Error("<what>: expected one of
// a|b|c, got '<name>'"), `what` naming the setting (a config key, an option).
template <typename Enum, std::size_t N>
Enum parse_enum(const NameTable<N>& names, std::string_view name, std::string_view what) {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == name) return Enum(i);
  }
  throw Error(std::string(what) + ": expected one of " + join_names(names) + ", got '" +
              std::string(name) + "'");
}

}  // namespace topkformer
