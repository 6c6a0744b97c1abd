// Reading, validating and writing configs, all driven by the schema table
// (config_schema.cpp). Every error starts with where the value came from
// (`FILE:LINE` or `--set key=value`) and the key's path.
#include "topkformer/train/config.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>

#include "config_schema.h"
#include "file_io.h"
#include "topkformer/core/error.h"

namespace topkformer::train {
namespace {

// Configs are a few KiB. The cap is for a wrong path: `--config /dev/zero`
// (or a large data file) would otherwise be read into memory without end.
constexpr std::uintmax_t max_config_bytes = std::uintmax_t{1} << 20;

using schema::describe;
using schema::join;
using schema::Key;

[[noreturn]] void fail(const std::string& where, const std::string& path, const std::string& what) {
  throw Error(where + ": " + (path.empty() ? "" : path + ": ") + what);
}

// "FILE:LINE", or just "FILE" when yaml-cpp knows no position.
std::string at(const std::string& source, const YAML::Mark& mark) {
  return mark.is_null() ? source : source + ":" + std::to_string(mark.line + 1);
}

// Where each key was set last, so that an error about a rule between keys
// points at the line (or override) that broke it.
class Origins {
 public:
  void record(const std::string& path, const std::string& where) {
    by_path_[path] = {next_++, where};
  }
  // The location of whichever of `paths` was set last; `fallback` when none was.
  std::string latest(const std::vector<std::string>& paths, const std::string& fallback) const {
    const std::pair<int, std::string>* best = nullptr;
    for (const std::string& path : paths) {
      const auto found = by_path_.find(path);
      if (found != by_path_.end() && (!best || found->second.first > best->first)) {
        best = &found->second;
      }
    }
    return best ? best->second : fallback;
  }

 private:
  std::map<std::string, std::pair<int, std::string>> by_path_;  // path -> (order, where)
  int next_ = 0;
};

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// "unknown key; did you mean 'kind'? (known keys of attention: ...)". A name
// is close when a third of its letters (at least one) differ, or when one
// name starts the other (`warmup` for `warmup_steps`).
std::string unknown(const std::string& what, const std::string& given,
                    const std::vector<std::string>& known, const std::string& known_label) {
  const std::string* closest = nullptr;
  std::size_t closest_distance = 0;
  for (const std::string& name : known) {
    const std::size_t distance = edit_distance(given, name);
    const bool prefix = std::min(given.size(), name.size()) >= 3 &&
                        (name.starts_with(given) || given.starts_with(name));
    if ((distance <= std::max<std::size_t>(1, given.size() / 3) || prefix) &&
        (!closest || distance < closest_distance)) {
      closest = &name;
      closest_distance = distance;
    }
  }
  return "unknown " + what + (closest ? "; did you mean '" + *closest + "'?" : "") + " (" +
         known_label + ": " + join(known, ", ") + ")";
}

std::vector<std::string> section_names() {
  std::vector<std::string> names;
  for (const schema::Section& section : schema::sections()) names.push_back(section.name);
  return names;
}

bool is_section(const std::string& name) {
  const auto names = section_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string unknown_section(const std::string& name) {
  return unknown("section", name, section_names(), "known sections");
}

// The key `section.name` (or the key it was renamed to), or an error naming
// the known keys of the section.
const Key& find_key(const std::string& section, const std::string& name, const std::string& where) {
  std::string path = section + "." + name;
  for (const auto& [old_path, new_path] : schema::renamed_keys()) {
    if (path == old_path) path = new_path;
  }
  std::vector<std::string> names;
  for (const Key& key : schema::keys()) {
    if (key.section != section) continue;
    if (key.path() == path) return key;
    names.push_back(key.name);
  }
  fail(where, section + "." + name, unknown("key", name, names, "known keys of " + section));
}

// Sets one key and checks its value, so a bad value is reported where it is.
void assign(Config& config, const Key& key, const YAML::Node& value, const std::string& where,
            Origins& origins) {
  if (const std::string what = key.read(config, value); !what.empty()) {
    fail(where, key.path(), what);
  }
  if (const std::string what = key.check(config); !what.empty()) fail(where, key.path(), what);
  origins.record(key.path(), where);
}

void read_section(Config& config, const std::string& section, const YAML::Node& name_node,
                  const YAML::Node& body, const std::string& source, Origins& origins) {
  if (body.IsNull()) return;  // `model:` with nothing under it: all defaults
  if (!body.IsMap()) {
    const YAML::Mark mark = body.Mark().is_null() ? name_node.Mark() : body.Mark();
    fail(at(source, mark), section, "expected a map of keys, got " + describe(body));
  }
  std::map<std::string, int> lines;  // keys seen, and their lines
  for (const auto& entry : body) {
    const std::string where = at(source, entry.first.Mark());
    if (!entry.first.IsScalar()) fail(where, section, "expected key names, got a map or list");
    const std::string name = entry.first.Scalar();
    const Key& key = find_key(section, name, where);
    // Keyed by the current name: a key given under its old and new names is given twice.
    if (const auto [seen, first] = lines.emplace(key.name, entry.first.Mark().line + 1); !first) {
      fail(where, key.path(), "given twice (first on line " + std::to_string(seen->second) + ")");
    }
    // A missing value (`steps:`) has its mark on the next line: name the key's line.
    const YAML::Mark value_mark = entry.second.Mark();
    const bool own_line = !entry.second.IsNull() && !value_mark.is_null();
    assign(config, key, entry.second, own_line ? at(source, value_mark) : where, origins);
  }
}

void read_document(Config& config, const std::string& yaml, const std::string& source,
                   Origins& origins) {
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(yaml);
  } catch (const YAML::Exception& error) {
    fail(at(source, error.mark), "", "invalid YAML: " + schema::yaml_error_text(error));
  }
  if (documents.size() > 1) {
    fail(at(source, documents[1].Mark()), "",
         "expected one YAML document, got " + std::to_string(documents.size()));
  }
  if (documents.empty() || documents.front().IsNull()) return;  // empty: all defaults
  const YAML::Node& root = documents.front();
  if (!root.IsMap()) {
    fail(at(source, root.Mark()), "",
         "expected a map of sections (" + join(section_names(), ", ") + "), got " + describe(root));
  }
  std::map<std::string, int> lines;  // sections seen, and their lines
  for (const auto& entry : root) {
    const std::string where = at(source, entry.first.Mark());
    if (!entry.first.IsScalar()) fail(where, "", "expected section names, got a map or list");
    const std::string section = entry.first.Scalar();
    if (!is_section(section)) fail(where, section, unknown_section(section));
    if (const auto [seen, first] = lines.emplace(section, entry.first.Mark().line + 1); !first) {
      fail(where, section, "given twice (first on line " + std::to_string(seen->second) + ")");
    }
    read_section(config, section, entry.first, entry.second, source, origins);
  }
}

std::string trim(const std::string& text) {
  const auto begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(" \t") - begin + 1);
}

// `section.key=value`, the value read as YAML (a scalar, or [a, b] for lists).
void apply_override(Config& config, const std::string& text, Origins& origins) {
  const std::string where = "--set " + text;
  const auto equals = text.find('=');
  const std::string path = trim(text.substr(0, equals));
  const auto dot = path.find('.');
  if (equals == std::string::npos || dot == std::string::npos || dot == 0 ||
      dot + 1 == path.size()) {
    fail(where, "", "expected section.key=value, e.g. attention.k=64");
  }
  const std::string section = path.substr(0, dot);
  if (!is_section(section)) fail(where, section, unknown_section(section));
  const Key& key = find_key(section, path.substr(dot + 1), where);
  YAML::Node value;
  try {
    value = YAML::Load(text.substr(equals + 1));
  } catch (const YAML::Exception& error) {
    fail(where, key.path(), "invalid YAML value: " + schema::yaml_error_text(error));
  }
  assign(config, key, value, where, origins);
}

void check_rules(const Config& config, const Origins& origins, const std::string& fallback) {
  for (const schema::Rule& rule : schema::rules()) {
    if (const std::string what = rule.check(config); !what.empty()) {
      fail(origins.latest(rule.keys, fallback), rule.keys.front(), what);
    }
  }
}

}  // namespace

Config parse_config(const std::string& yaml, const std::string& source,
                    const std::vector<std::string>& overrides) {
  Config config;
  config.source = source;
  Origins origins;
  read_document(config, yaml, source, origins);
  for (const std::string& text : overrides) apply_override(config, text, origins);
  check_rules(config, origins, source);
  return config;
}

Config load_config(const std::filesystem::path& file, const std::vector<std::string>& overrides) {
  std::error_code error;
  if (std::filesystem::is_directory(file, error)) {
    throw Error(file.string() + ": cannot read the config file: it is a folder");
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(file.string() + ": cannot read the config file");
  // Pipes and devices are read too (`--config <(...)`), but only up to the cap.
  const std::optional<std::string> text = detail::read_at_most(in, max_config_bytes);
  if (!text) {
    throw Error(file.string() + ": the config file holds more than " +
                std::to_string(max_config_bytes) + " bytes (1 MiB), the most a config may have");
  }
  if (in.bad()) throw Error(file.string() + ": cannot read the config file (read error)");
  return parse_config(*text, file.string(), overrides);
}

void validate(const Config& config) {
  const std::string where = config.source.empty() ? "config" : config.source;
  for (const Key& key : schema::keys()) {
    if (const std::string what = key.check(config); !what.empty()) fail(where, key.path(), what);
  }
  check_rules(config, Origins(), where);
}

std::string to_yaml(const Config& config) {
  std::string out, section;
  for (const Key& key : schema::keys()) {
    if (key.section != section) {
      section = key.section;
      out += section + ":\n";
    }
    out += "  " + key.name + ": " + key.write(config) + "\n";
  }
  return out;
}

std::string config_hash(const Config& config) {
  // FNV-1a: stable across platforms and builds, unlike std::hash.
  const std::string yaml = to_yaml(config);
  return detail::hex64(detail::fnv1a64(yaml.data(), yaml.size()));
}

std::string choices_text() {
  std::string out;
  for (const schema::Key& key : schema::keys()) {
    if (!key.choices.empty()) out += key.path() + ": " + schema::join(key.choices, "|") + "\n";
  }
  return out;
}

std::string schema_markdown() {
  const Config defaults;
  std::string out;
  for (const schema::Section& section : schema::sections()) {
    if (!out.empty()) out += '\n';
    out += "### `" + section.name + "`\n\n" + section.meaning +
           "\n\n| key | type | default | meaning |\n| --- | --- | --- | --- |\n";
    for (const Key& key : schema::keys()) {
      if (key.section != section.name) continue;
      out += "| `" + key.name + "` | " + key.type + " | `" + key.write(defaults) + "` | " +
             key.meaning + " |\n";
    }
  }
  out += "\n### Rules between keys\n\n";
  for (const schema::Rule& rule : schema::rules()) out += "- " + rule.meaning + "\n";
  out +=
      "\n### What `topkformer eval` may change\n\nOnly these may differ from the "
      "checkpoint's config: ";
  std::vector<std::string> allowed;
  for (const std::string& key : schema::evaluation_keys()) allowed.push_back("`" + key + "`");
  return out + schema::join(allowed, ", ") + ".\n";
}

void check_evaluation_config(const Config& trained, const Config& evaluated) {
  for (const Key& key : schema::keys()) {
    if (schema::may_change_at_evaluation(key)) continue;
    const std::string before = key.write(trained), now = key.write(evaluated);
    TKF_CHECK(before == now, evaluated.source, ": ", key.path(), " is ", before,
              " in the checkpoint's config but ", now,
              " here; at evaluation only the attention and feed-forward variants and their knobs, "
              "eval.*, where the data is and runtime.* may change (the other keys change the "
              "architecture or its meaning, or do nothing at evaluation)");
  }
}

}  // namespace topkformer::train
