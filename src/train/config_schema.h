// The config schema: one table entry per key, bound to its Config member.
// The table alone drives reading (config.cpp), validation, to_yaml and
// schema_markdown, so adding a key is adding one line to config_schema.cpp.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "topkformer/train/config.h"

namespace topkformer::train::schema {

struct Key {
  std::string section, name;
  std::string type;     // for the docs: "integer >= 1", "`cls`, `mean`", "list of strings"
  std::string meaning;  // one line, for the docs
  std::vector<std::string> choices;  // a choice's names, in order; empty for other keys
  // Sets the member from a YAML value. Returns what is wrong with the value's
  // type or spelling ("expected an integer, got 'ten'"), or "" when it was set.
  std::function<std::string(Config&, const YAML::Node&)> read;
  // The member's value as YAML: a scalar, or a flow sequence for lists.
  std::function<std::string(const Config&)> write;
  // What is wrong with the member's value ("must be >= 1, got 0"), or "".
  std::function<std::string(const Config&)> check;

  std::string path() const { return section + "." + name; }
};

struct Section {
  std::string name, meaning;
};

// A rule between keys. `check` returns what is wrong, said about keys.front()
// (the error names that key), or "". The other keys are those the rule reads:
// the error points at whichever of them was set last.
struct Rule {
  std::vector<std::string> keys;
  std::string meaning;  // one line, for the docs
  std::function<std::string(const Config&)> check;
};

const std::vector<Section>& sections();  // in file order
const std::vector<Key>& keys();          // grouped by section, in file order
const std::vector<Rule>& rules();
// Keys renamed since configs were first written, {old path, new path}: old
// configs and run directories keep loading, and to_yaml writes the new name.
const std::vector<std::pair<std::string, std::string>>& renamed_keys();
// The keys `topkformer eval` may set to other values than the checkpoint's
// (check_evaluation_config): sections ("attention") or single keys ("data.dir").
const std::vector<std::string>& evaluation_keys();
bool may_change_at_evaluation(const Key& key);

// A value as messages show it after "got": 'text', a list, a map or nothing.
std::string describe(const YAML::Node& node);
// What a yaml-cpp exception says; for its depth limit (whose message is a
// bare "bad file") what the limit is.
std::string yaml_error_text(const YAML::Exception& error);
std::string join(const std::vector<std::string>& items, const std::string& separator);

// YAML for a string: plain when no reader could take it for anything else
// (a number, a boolean, null, an alias), otherwise double-quoted.
std::string quote(const std::string& text);
// The shortest text that reads back as exactly `value`, with a '.' so that
// YAML 1.1 readers (PyYAML) also see a float: 0.1, 1.0, 1.0e-08.
std::string format_number(double value);

}  // namespace topkformer::train::schema
