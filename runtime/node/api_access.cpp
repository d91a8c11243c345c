#include "runtime/node/api_access.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "messages/errc.hpp"

namespace troupe {

namespace {

bool is_loopback(const std::string& http_addr) {
  auto host = http_addr.substr(0, http_addr.rfind(':'));
  return host.rfind("127.", 0) == 0 || host == "localhost" || host == "::1" ||
         host == "[::1]";
}

/// Adds the tokens of `in` (`<role> <name> <token>` per line) to `out`;
/// errors name `source` and the line, never a token.
caf::error parse_tokens(std::istream& in, const std::string& source,
                        api_access& out) {
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    std::istringstream words{line};
    std::string role, name, token, extra;
    if (!(words >> role) || role[0] == '#')
      continue;
    auto where = source + ":" + std::to_string(n) + ": ";
    if (!(words >> name >> token) || (words >> extra))
      return make_error(errc::invalid_payload,
                        where + "expected '<viewer|admin> <name> <token>'");
    if (role != "viewer" && role != "admin")
      return make_error(errc::invalid_payload,
                        where + "role must be viewer or admin, got '" +
                            role.substr(0, 32) + "'");
    if (token.size() < 16)
      return make_error(errc::invalid_payload,
                        where + "the token of '" + name +
                            "' is shorter than 16 characters");
    out.tokens[token] = api_caller{name, role == "admin"};
  }
  return caf::none;
}

} // namespace

caf::expected<api_access> load_api_access(const std::string& tokens_file,
                                          const std::string& http_addr,
                                          const std::string& env_tokens) {
  api_access out;
  if (tokens_file.empty() && env_tokens.empty()) {
    out.open = is_loopback(http_addr);
    return out;
  }
  if (!tokens_file.empty()) {
    std::ifstream in{tokens_file};
    if (!in)
      return make_error(errc::invalid_payload,
                        "node.api_tokens_file: cannot read '" + tokens_file +
                            "'");
    if (auto err = parse_tokens(in, tokens_file, out))
      return err;
  }
  // The environment form separates entries with ';' or newlines, so one
  // variable can carry several.
  auto env_lines = env_tokens;
  std::replace(env_lines.begin(), env_lines.end(), ';', '\n');
  std::istringstream env_in{env_lines};
  if (auto err = parse_tokens(env_in, "TROUPE_API_TOKENS", out))
    return err;
  if (out.tokens.empty())
    return make_error(errc::invalid_payload,
                      "no API token in " +
                          (tokens_file.empty()
                               ? std::string{"TROUPE_API_TOKENS"}
                               : "'" + tokens_file + "'"));
  return out;
}

std::string api_tokens_from_env() {
  const char* v = std::getenv("TROUPE_API_TOKENS");
  return v ? v : "";
}

} // namespace troupe
