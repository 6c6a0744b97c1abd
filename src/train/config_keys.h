// The kinds of config keys: each factory binds a key to a Config member
// (through an accessor lambda) and gives it its reading, writing, range check
// and type description. Only config_schema.cpp includes this.
#pragma once

#include <charconv>
#include <cmath>
#include <optional>
#include <type_traits>

#include "config_schema.h"
#include "topkformer/core/device.h"

namespace topkformer::train::schema {

template <typename Field>
using MemberType = std::remove_cvref_t<std::invoke_result_t<Field, Config&>>;

// Allowed values of a number: a lower bound and optionally an upper one.
struct Range {
  std::optional<double> min, max;
  bool min_open = false, max_open = false;

  std::string text() const {
    const auto bound = [](double value) {
      char buffer[32];
      return std::string(buffer, std::to_chars(buffer, buffer + sizeof buffer, value).ptr);
    };
    if (min && max) {
      return "in " + std::string(min_open ? "(" : "[") + bound(*min) + ", " + bound(*max) +
             (max_open ? ")" : "]");
    }
    if (min) return (min_open ? "> " : ">= ") + bound(*min);
    return "";
  }
  std::string check(double value, const std::string& shown) const {
    const bool above_min = !min || (min_open ? value > *min : value >= *min);
    const bool below_max = !max || (max_open ? value < *max : value <= *max);
    return above_min && below_max ? "" : "must be " + text() + ", got " + shown;
  }
};

inline Range at_least(double min) {
  return {min, std::nullopt};
}
inline Range positive() {
  return {0.0, std::nullopt, true};
}
// Probabilities and decay rates: [0, 1).
inline Range fraction() {
  return {0.0, 1.0, false, true};
}

// A key without its section (add() sets it) and functions.
inline Key new_key(std::string name, std::string type, std::string meaning) {
  Key key;
  key.name = std::move(name);
  key.type = std::move(type);
  key.meaning = std::move(meaning);
  return key;
}

template <typename T>
std::optional<T> parse_number(const std::string& text) {
  T value{};
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (error != std::errc() || stop != end) return std::nullopt;
  return value;
}

template <typename Field>
Key integer(std::string name, Field field, Range range, std::string meaning) {
  using T = MemberType<Field>;
  static_assert(std::is_integral_v<T>);
  Key key = new_key(std::move(name), "integer " + range.text(), std::move(meaning));
  key.read = [field](Config& config, const YAML::Node& node) -> std::string {
    const std::optional<T> value = node.IsScalar() ? parse_number<T>(node.Scalar()) : std::nullopt;
    if (!value) {
      return std::is_signed_v<T> ? "expected an integer, got " + describe(node)
                                 : "expected an integer >= 0, got " + describe(node);
    }
    field(config) = *value;
    return "";
  };
  key.write = [field](const Config& config) { return std::to_string(field(config)); };
  key.check = [field, range](const Config& config) {
    return range.check(double(field(config)), std::to_string(field(config)));
  };
  return key;
}

template <typename Field>
Key number(std::string name, Field field, Range range, std::string meaning) {
  static_assert(std::is_same_v<MemberType<Field>, double>);
  Key key = new_key(std::move(name), "number " + range.text(), std::move(meaning));
  key.read = [field](Config& config, const YAML::Node& node) -> std::string {
    const auto value = node.IsScalar() ? parse_number<double>(node.Scalar()) : std::nullopt;
    if (!value) return "expected a number, got " + describe(node);
    if (!std::isfinite(*value)) return "expected a finite number, got " + describe(node);
    field(config) = *value;
    return "";
  };
  key.write = [field](const Config& config) { return format_number(field(config)); };
  key.check = [field, range](const Config& config) {
    return range.check(field(config), format_number(field(config)));
  };
  return key;
}

template <typename Field>
Key flag(std::string name, Field field, std::string meaning) {
  static_assert(std::is_same_v<MemberType<Field>, bool>);
  Key key = new_key(std::move(name), "boolean", std::move(meaning));
  key.read = [field](Config& config, const YAML::Node& node) -> std::string {
    const std::string text = node.IsScalar() ? node.Scalar() : "";
    if (text == "true" || text == "True" || text == "TRUE") {
      field(config) = true;
    } else if (text == "false" || text == "False" || text == "FALSE") {
      field(config) = false;
    } else {
      return "expected true or false, got " + describe(node);
    }
    return "";
  };
  key.write = [field](const Config& config) { return field(config) ? "true" : "false"; };
  key.check = [](const Config&) { return std::string(); };
  return key;
}

template <typename T>
constexpr bool is_optional = false;
template <typename T>
constexpr bool is_optional<std::optional<T>> = true;

// One of the names of a table (core/names.h): an enum member takes name i as
// Enum(i); a std::optional<Enum> member also takes `auto`, first, as no value.
template <typename Field, std::size_t N>
Key choice(std::string name, Field field, const NameTable<N>& table, std::string meaning) {
  using Member = MemberType<Field>;
  constexpr bool automatic = is_optional<Member>;
  std::vector<std::string> names;
  if constexpr (automatic) names.emplace_back("auto");
  names.insert(names.end(), table.begin(), table.end());
  std::vector<std::string> quoted;
  for (const std::string& option : names) quoted.push_back("`" + option + "`");
  Key key = new_key(std::move(name), join(quoted, ", "), std::move(meaning));
  key.choices = names;
  const std::string expected = "expected one of " + join(names, "|");
  // The member's position in `names` (names.size() or more: no name).
  const auto index_of = [field](const Config& config) -> std::size_t {
    if constexpr (automatic) {
      return field(config) ? std::size_t(*field(config)) + 1 : 0;
    } else {
      return std::size_t(field(config));
    }
  };
  key.read = [field, names, expected](Config& config, const YAML::Node& node) -> std::string {
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (!node.IsScalar() || node.Scalar() != names[i]) continue;
      if constexpr (automatic) {
        using Enum = typename Member::value_type;
        field(config) = i == 0 ? Member() : Member(Enum(i - 1));
      } else {
        field(config) = Member(i);
      }
      return "";
    }
    return expected + ", got " + describe(node);
  };
  key.write = [index_of, names](const Config& config) {
    const std::size_t index = index_of(config);
    return index < names.size() ? names[index] : "?";
  };
  key.check = [index_of, names, expected](const Config& config) {
    return index_of(config) < names.size() ? std::string() : expected;
  };
  return key;
}

// A string: `required` ones may not be empty; `path` ones may use
// ${TOPKFORMER_DATA} (expand_path), and no other ${...}, which would stay unexpanded.
struct TextRules {
  bool required = false, path = false;
};

template <typename Field>
Key text(std::string name, Field field, TextRules rules, std::string meaning) {
  Key key =
      new_key(std::move(name),
              std::string(rules.path ? "path" : "string") + (rules.required ? ", not empty" : ""),
              std::move(meaning));
  key.read = [field](Config& config, const YAML::Node& node) -> std::string {
    if (node.IsNull()) {
      field(config) = std::string();
    } else if (node.IsScalar()) {
      field(config) = node.Scalar();
    } else {
      return "expected a string, got " + describe(node);
    }
    return "";
  };
  const auto value = [field](const Config& config) -> std::string {
    if constexpr (std::is_same_v<MemberType<Field>, std::string>) {
      return field(config);
    } else {
      return field(config).string();
    }
  };
  key.write = [value](const Config& config) { return quote(value(config)); };
  key.check = [value, rules](const Config& config) -> std::string {
    const std::string given = value(config);
    if (rules.required && given.empty()) return "must not be empty";
    if (rules.path) {
      static const std::string known = "${TOPKFORMER_DATA}";
      for (auto at = given.find("${"); at != std::string::npos; at = given.find("${", at + 1)) {
        if (given.compare(at, known.size(), known) != 0) {
          return "only " + known + " is expanded, got '" + given + "'";
        }
      }
    }
    return "";
  };
  return key;
}

// A device name: cpu, cuda or cuda:N (Device::parse). Whether the device
// exists is checked where it is used, not in the config.
template <typename Field>
Key device_key(std::string name, Field field, std::string meaning) {
  static_assert(std::is_same_v<MemberType<Field>, std::string>);
  Key key = text(std::move(name), field, {.required = true}, std::move(meaning));
  key.type.clear();
  for (std::string_view type : device_type_names) key.type += "`" + std::string(type) + "`, ";
  key.type += "`" + std::string(device_type_names[std::size_t(DeviceType::cuda)]) + ":N`";
  key.check = [field](const Config& config) -> std::string {
    try {
      Device::parse(field(config));
      return "";
    } catch (const Error& error) {
      return error.what();
    }
  };
  return key;
}

template <typename Field>
Key string_list(std::string name, Field field, std::string meaning) {
  static_assert(std::is_same_v<MemberType<Field>, std::vector<std::string>>);
  Key key = new_key(std::move(name), "list of strings", std::move(meaning));
  key.read = [field](Config& config, const YAML::Node& node) -> std::string {
    std::vector<std::string> items;
    if (!node.IsNull() && !node.IsSequence()) {
      return "expected a list of strings such as [a, b], got " + describe(node);
    }
    for (const YAML::Node& item : node) {
      if (!item.IsScalar())
        return "expected a list of strings, got a list holding " + describe(item);
      items.push_back(item.Scalar());
    }
    field(config) = std::move(items);
    return "";
  };
  key.write = [field](const Config& config) {
    std::vector<std::string> items;
    for (const std::string& item : field(config)) items.push_back(quote(item));
    return "[" + join(items, ", ") + "]";
  };
  key.check = [](const Config&) { return std::string(); };
  return key;
}

}  // namespace topkformer::train::schema
