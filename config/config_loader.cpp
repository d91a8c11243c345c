// Placeholder: replaced by the real loader.
#include "config/config_loader.hpp"

#include <cstdlib>

namespace troupe {

std::string config_problem::to_string() const {
  return file + ":" + std::to_string(line) + ": " + path + ": " + message;
}

env_lookup process_env() {
  return [](const char* name) -> std::optional<std::string> {
    if (auto v = std::getenv(name))
      return std::string{v};
    return std::nullopt;
  };
}

config_result parse_config(std::string_view, std::string_view source_name,
                           const config_context&) {
  config_result r;
  r.problems.push_back({std::string{source_name}, 0, "", "not implemented"});
  return r;
}

config_result load_config_file(const std::string& path,
                               const config_context& ctx) {
  return parse_config("", path, ctx);
}

std::optional<duration_ms> parse_duration(std::string_view) {
  return std::nullopt;
}

std::string format_duration(duration_ms d) {
  return std::to_string(d.count()) + "ms";
}

void apply_env_overrides(troupe_config&, const env_lookup&) {}

} // namespace troupe
