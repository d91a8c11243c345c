#pragma once

// Who may use a node's JSON API and dashboard (runtime/node/http_api.hpp):
// bearer tokens from node.api_tokens_file and the TROUPE_API_TOKENS
// variable, each mapped to a name and a role (viewer reads, admin steers).

#include <map>
#include <string>

#include <caf/expected.hpp>

namespace troupe {

struct api_caller {
  std::string name;
  bool admin = false;
};

/// Who may use the API.
struct api_access {
  /// No tokens configured: open on loopback (everyone is an admin there),
  /// refused elsewhere.
  bool open = false;
  /// Token -> caller.
  std::map<std::string, api_caller> tokens;
};

/// Reads the tokens file and `env_tokens` (the TROUPE_API_TOKENS
/// variable: the same lines, separated by ';' or newlines) for a node
/// serving HTTP on `http_addr`: `<role> <name> <token>` per line; `#`
/// comments; role `viewer` or `admin`; tokens of at least 16 characters.
/// Errors name the file (or variable) and line, never a token.
caf::expected<api_access> load_api_access(const std::string& tokens_file,
                                          const std::string& http_addr,
                                          const std::string& env_tokens = {});

/// The TROUPE_API_TOKENS variable ("" when unset).
std::string api_tokens_from_env();

} // namespace troupe
