#include "training_state_yaml.h"

#include <yaml-cpp/yaml.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include "config_schema.h"
#include "topkformer/core/error.h"

namespace topkformer::train::detail {
namespace {

// Shortest decimal that reads back to exactly `value` (std::to_chars), with a
// decimal point so that every YAML reader takes it for a float (YAML 1.1
// readers such as PyYAML read "1e+300" and "0" otherwise), and the YAML
// spelling for infinities and NaN.
std::string double_text(double value) {
  if (std::isnan(value)) return ".nan";
  if (std::isinf(value)) return value > 0 ? ".inf" : "-.inf";
  std::array<char, 32> buffer{};
  const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  std::string text(buffer.data(), result.ptr);
  if (text.find('.') == std::string::npos) {
    const std::size_t exponent = text.find('e');
    text.insert(exponent == std::string::npos ? text.size() : exponent, ".0");
  }
  return text;
}

// A field of state.yaml: its dotted key and node, for parsing with errors of
// the form "<file>:<line>: <key>: <what>".
class Field {
 public:
  Field(std::string where, std::string key, YAML::Node node)
      : where_(std::move(where)), key_(std::move(key)), node_(std::move(node)) {}

  [[noreturn]] void fail(const std::string& what) const {
    const int line = node_.Mark().line;
    throw Error(where_ + (line >= 0 ? ":" + std::to_string(line + 1) : "") + ": " +
                (key_.empty() ? "the document" : key_) + ": " + what);
  }

  std::string scalar(const char* expected) const {
    if (!node_.IsScalar()) fail(std::string("expected ") + expected);
    return node_.Scalar();
  }

  template <typename Integer>
  Integer integer() const {
    const char* expected = std::is_signed_v<Integer> ? "an integer" : "a non-negative integer";
    const std::string text = scalar(expected);
    Integer value{};
    const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
    if (result.ec != std::errc{} || result.ptr != text.data() + text.size())
      fail(std::string("expected ") + expected + ", got '" + text + "'");
    return value;
  }

  double real() const {
    const std::string text = scalar("a number");
    if (text == ".inf" || text == ".Inf" || text == ".INF" || text == "+.inf")
      return std::numeric_limits<double>::infinity();
    if (text == "-.inf" || text == "-.Inf" || text == "-.INF")
      return -std::numeric_limits<double>::infinity();
    if (text == ".nan" || text == ".NaN" || text == ".NAN")
      return std::numeric_limits<double>::quiet_NaN();
    double value = 0.0;
    const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
    if (result.ec != std::errc{} || result.ptr != text.data() + text.size())
      fail("expected a number, got '" + text + "'");
    return value;
  }

  bool is_null() const { return node_.IsNull(); }

  // The map's field `name`; unknown fields are errors (a typo or a damaged file
  // must not be read as a default).
  Field operator[](const std::string& name) const {
    if (!node_.IsMap()) fail("expected a map");
    const YAML::Node child = std::as_const(node_)[name];  // const: a lookup, no insertion
    const std::string child_key = key_.empty() ? name : key_ + "." + name;
    if (!child.IsDefined()) throw Error(where_ + ": " + child_key + ": missing");
    return Field(where_, child_key, child);
  }

  void only_keys(std::initializer_list<std::string_view> names) const {
    if (!node_.IsMap()) fail("expected a map");
    const std::set<std::string_view> allowed(names);
    for (const auto& entry : node_) {
      const std::string name = entry.first.as<std::string>();
      if (!allowed.contains(name))
        Field(where_, key_.empty() ? name : key_ + "." + name, entry.first).fail("unknown key");
    }
  }

 private:
  std::string where_;
  std::string key_;
  YAML::Node node_;
};

}  // namespace

std::string training_state_yaml(const TrainingState& state) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "step" << YAML::Value << state.step;
  out << YAML::Key << "data" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "epoch" << YAML::Value << state.data.epoch;
  out << YAML::Key << "position" << YAML::Value << state.data.position;
  out << YAML::EndMap;
  out << YAML::Key << "rng" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "seed" << YAML::Value << state.rng.seed;
  out << YAML::Key << "offset" << YAML::Value << state.rng.offset;
  out << YAML::EndMap;
  out << YAML::Key << "best_metric" << YAML::Value;
  if (state.best_metric) {
    out << double_text(*state.best_metric);
  } else {
    out << YAML::Null;
  }
  out << YAML::Key << "best_step" << YAML::Value << state.best_step;
  out << YAML::Key << "evals_without_improvement" << YAML::Value << state.evals_without_improvement;
  out << YAML::Key << "elapsed_seconds" << YAML::Value << double_text(state.elapsed_seconds);
  out << YAML::Key << "config_hash" << YAML::Value << YAML::DoubleQuoted << state.config_hash;
  out << YAML::Key << "version" << YAML::Value << YAML::DoubleQuoted << state.version;
  out << YAML::EndMap;
  TKF_CHECK(out.good(), "state.yaml: cannot write: ", out.GetLastError());
  return std::string(out.c_str()) + "\n";
}

TrainingState parse_training_state(const std::string& text, const std::string& where) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& error) {
    const int line = error.mark.line;
    throw Error(where + (line >= 0 ? ":" + std::to_string(line + 1) : "") +
                ": not valid YAML: " + schema::yaml_error_text(error));
  }
  const Field state_field(where, "", root);
  state_field.only_keys({"step", "data", "rng", "best_metric", "best_step",
                         "evals_without_improvement", "elapsed_seconds", "config_hash", "version"});
  state_field["data"].only_keys({"epoch", "position"});
  state_field["rng"].only_keys({"seed", "offset"});

  TrainingState state;
  state.step = state_field["step"].integer<std::int64_t>();
  state.data.epoch = state_field["data"]["epoch"].integer<std::int64_t>();
  state.data.position = state_field["data"]["position"].integer<std::int64_t>();
  state.rng.seed = state_field["rng"]["seed"].integer<std::uint64_t>();
  state.rng.offset = state_field["rng"]["offset"].integer<std::uint64_t>();
  const Field best = state_field["best_metric"];
  if (!best.is_null()) state.best_metric = best.real();
  state.best_step = state_field["best_step"].integer<std::int64_t>();
  state.evals_without_improvement =
      state_field["evals_without_improvement"].integer<std::int64_t>();
  state.elapsed_seconds = state_field["elapsed_seconds"].real();
  state.config_hash = state_field["config_hash"].scalar("a string");
  state.version = state_field["version"].scalar("a string");
  return state;
}

}  // namespace topkformer::train::detail
