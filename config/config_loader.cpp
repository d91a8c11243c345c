#include "config/config_loader.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "config/config_reader.hpp"
#include "config/config_sections.hpp"

namespace troupe {

using config_detail::check_host_port;
using config_detail::check_nats_url;
using config_detail::check_pg_url;
using config_detail::reader;
using config_detail::redact;

std::string config_problem::to_string() const {
  std::string out = file;
  if (line > 0)
    out += ":" + std::to_string(line);
  out += ": ";
  if (!path.empty())
    out += path + ": ";
  out += message;
  return out;
}

env_lookup process_env() {
  return [](const char* name) -> std::optional<std::string> {
    if (auto v = std::getenv(name))
      return std::string{v};
    return std::nullopt;
  };
}

std::optional<duration_ms> parse_duration(std::string_view text) {
  if (text.empty())
    return std::nullopt;
  std::size_t i = 0;
  while (i < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
    ++i;
  if (i == 0 || i == text.size())
    return std::nullopt;
  std::string num{text.substr(0, i)};
  // "." alone would read as 0 through strtod; a number needs a digit.
  if (std::count(num.begin(), num.end(), '.') > 1 ||
      num.find_first_of("0123456789") == std::string::npos)
    return std::nullopt;
  auto unit = text.substr(i);
  double factor = 0;
  if (unit == "ms")
    factor = 1;
  else if (unit == "s")
    factor = 1000;
  else if (unit == "m")
    factor = 60 * 1000;
  else if (unit == "h")
    factor = 3600 * 1000;
  else if (unit == "d")
    factor = 24.0 * 3600 * 1000;
  else
    return std::nullopt;
  double v = std::strtod(num.c_str(), nullptr);
  double ms = v * factor;
  if (!std::isfinite(ms) || ms < 0 || ms > 1e15)
    return std::nullopt;
  // Resolution is 1ms: "1.5ms" is rejected rather than silently rounded.
  auto whole = std::llround(ms);
  if (std::fabs(ms - static_cast<double>(whole)) > 1e-6)
    return std::nullopt;
  return duration_ms{static_cast<std::int64_t>(whole)};
}

std::string format_duration(duration_ms d) {
  auto ms = d.count();
  if (ms != 0 && ms % (3600 * 1000) == 0)
    return std::to_string(ms / (3600 * 1000)) + "h";
  if (ms != 0 && ms % (60 * 1000) == 0)
    return std::to_string(ms / (60 * 1000)) + "m";
  if (ms % 1000 == 0)
    return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

namespace {

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || !buf[0])
    return "node";
  std::string out;
  for (unsigned char c : std::string{buf})
    out +=
        (std::isalnum(c) || c == '-' || c == '_') ? static_cast<char>(c) : '-';
  return out;
}

} // namespace

bool is_subject_token(std::string_view s) noexcept {
  if (s.empty())
    return false;
  for (unsigned char c : s)
    if (!(std::isalnum(c) || c == '_' || c == '-'))
      return false;
  return true;
}

void apply_env_overrides(troupe_config& cfg, const env_lookup& env) {
  if (!env)
    return;
  // An empty variable counts as unset: `TROUPE_PG_URL=` in a compose file
  // must not replace a valid URL by an empty one.
  auto apply = [&](const char* name, std::string& field) {
    if (auto v = env(name); v && !v->empty())
      field = *v;
  };
  apply("TROUPE_NATS_URL", cfg.nats.url);
  apply("TROUPE_PG_URL", cfg.postgres.url);
  apply("TROUPE_NODE_ID", cfg.node.id);
  apply("TROUPE_HTTP_ADDR", cfg.node.http);
  apply("TROUPE_NATS_PASSWORD", cfg.nats.password);
  apply("TROUPE_NATS_TOKEN", cfg.nats.token);
}

std::string read_secret(const std::string& path) {
  std::ifstream in{path};
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
    line.pop_back();
  return line;
}

void load_nats_secrets(troupe_config& cfg) {
  // The environment wins over a file (set by apply_env_overrides).
  if (cfg.nats.password.empty() && !cfg.nats.password_file.empty())
    cfg.nats.password = read_secret(cfg.nats.password_file);
  if (cfg.nats.token.empty() && !cfg.nats.token_file.empty())
    cfg.nats.token = read_secret(cfg.nats.token_file);
}

config_result parse_config(std::string_view text, std::string_view source_name,
                           const config_context& ctx) {
  config_result res;
  troupe_config cfg;
  cfg.source = std::string{source_name};
  reader r{std::string{source_name}, res.problems};
  try {
    auto root = toml::parse(text, source_name);
    config_detail::read_document(r, root, ctx, cfg);
  } catch (const toml::parse_error& err) {
    res.problems.push_back({std::string{source_name},
                            static_cast<int>(err.source().begin.line), "",
                            redact(std::string{"TOML syntax error: "} +
                                   std::string{err.description()})});
    return res;
  }
  // File problems in line order; env problems follow, as they are applied
  // after the file.
  std::stable_sort(res.problems.begin(), res.problems.end(),
                   [](const config_problem& a, const config_problem& b) {
                     return a.line < b.line;
                   });
  if (ctx.env) {
    // Overrides are validated like file values, and located at the variable.
    troupe_config before = cfg;
    apply_env_overrides(cfg, ctx.env);
    if (cfg.nats.url != before.nats.url) {
      reader er{"env:TROUPE_NATS_URL", res.problems};
      check_nats_url(er, nullptr, "nats.url", cfg.nats.url);
    }
    if (cfg.postgres.url != before.postgres.url) {
      reader er{"env:TROUPE_PG_URL", res.problems};
      check_pg_url(er, nullptr, "postgres.url", cfg.postgres.url);
    }
    if (cfg.node.http != before.node.http) {
      reader er{"env:TROUPE_HTTP_ADDR", res.problems};
      check_host_port(er, nullptr, "node.http", cfg.node.http);
    }
    if (cfg.node.id != before.node.id && !is_subject_token(cfg.node.id))
      res.problems.push_back({"env:TROUPE_NODE_ID", 0, "node.id",
                              "must be letters, digits, '_' or '-' (got \"" +
                                  cfg.node.id + "\")"});
  }
  if (cfg.node.id.empty())
    cfg.node.id = host_name();
  for (auto& p : res.problems)
    p.message = redact(p.message);
  load_nats_secrets(cfg);
  if (res.problems.empty())
    res.config = std::move(cfg);
  return res;
}

config_result load_config_file(const std::string& path,
                               const config_context& ctx) {
  std::ifstream in{path};
  if (!in) {
    config_result res;
    res.problems.push_back(
        {path, 0, "",
         std::string{"cannot read file: "} + std::strerror(errno)});
    return res;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path, ctx);
}

} // namespace troupe
