#include "config/config.hpp"

#include <cctype>

namespace troupe {

namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

} // namespace

std::string env_pattern_problem(const std::string& pattern) {
  if (pattern.empty())
    return "an empty variable name";
  auto quoted = "\"" + pattern + "\"";
  auto star = pattern.find('*');
  bool prefix = star != std::string::npos;
  if (prefix && star + 1 != pattern.size())
    return quoted + ": '*' may only end a name (a prefix)";
  auto stem = prefix ? pattern.substr(0, star) : pattern;
  for (char c : stem)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_'))
      return quoted +
             ": not a variable name (letters, digits, '_', a final '*')";
  const std::string own = "TROUPE_";
  if (starts_with(stem, own) || (prefix && starts_with(own, stem)))
    return quoted +
           " would pass troupe's own variables (TROUPE_*, which hold its "
           "secrets) to stage programs";
  return "";
}

const char* to_string(jitter_kind x) noexcept {
  switch (x) {
  case jitter_kind::none:
    return "none";
  case jitter_kind::full:
    return "full";
  case jitter_kind::equal:
    return "equal";
  }
  return "none";
}

std::string scheduler_policy(const node_config& node, unsigned cores) {
  if (node.scheduler != "auto")
    return node.scheduler;
  auto threads = node.scheduler_threads > 0
                     ? static_cast<unsigned>(node.scheduler_threads)
                     : cores;
  return threads <= 4 ? "sharing" : "stealing";
}

} // namespace troupe
