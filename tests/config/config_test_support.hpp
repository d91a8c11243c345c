#pragma once

// What the config loader's tests share: a fake environment, parsing from
// text, and a minimal valid configuration.

#include <map>
#include <optional>
#include <string>

#include "config/config_loader.hpp"

namespace troupe::test {

inline env_lookup fake_env(std::map<std::string, std::string> vars) {
  return [vars](const char* name) -> std::optional<std::string> {
    if (auto i = vars.find(name); i != vars.end())
      return i->second;
    return std::nullopt;
  };
}

inline config_result parse(const std::string& text, config_context ctx = {}) {
  return parse_config(text, "t.toml", ctx);
}

inline const char* minimal = R"(
[node]
id = "n1"
[pipelines.p]
stages = [ { name = "a", kind = "noop" } ]
)";

} // namespace troupe::test
