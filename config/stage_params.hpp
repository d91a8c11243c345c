#pragma once

// What a stage kind accepts in its stage table besides `name`, `kind`,
// `timeout` and `retry`. The kinds declare it (actors/builtin_stages.cpp,
// runtime/exec/exec_stage.cpp, or a C++ kind registered by an embedding
// program); the config loader checks a stage against its kind's schema, so
// every kind, built in or not, gets located errors for its parameters.

#include <string>
#include <vector>

namespace troupe {

enum class param_type {
  duration,         // "250ms", "3s"
  count,            // integer >= 0
  positive_integer, // integer >= 1
  probability,      // number in [0, 1]
  boolean,
  string,
  command,      // non-empty array of strings
  string_table, // table of strings
  exit_codes,   // array of integers 1..255
  env_patterns, // array of variable names or prefixes ending in '*'
};

struct param_rule {
  std::string key;
  param_type type;
  bool required = false;
  /// Said after the type's own message (what the parameter means).
  std::string hint = {};
};

struct stage_kind_schema {
  std::string kind;
  std::vector<param_rule> params;
  /// The kind judges its parameters itself, when its stage is built at
  /// start-up: the loader accepts any key.
  bool open = false;
};

} // namespace troupe
