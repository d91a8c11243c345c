#include "config/config_reader.hpp"

#include <cctype>
#include <cstdlib>
#include <sstream>

namespace troupe::config_detail {

std::string redact(const std::string& text) {
  // A URL ends at whitespace, a quote or a list separator; its userinfo ends
  // at the last '@' (an unencoded '@' in a password must not leak its tail).
  auto is_end = [](char c) {
    return std::isspace(static_cast<unsigned char>(c)) || c == '"' ||
           c == '\'' || c == ',';
  };
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (is_end(text[i])) {
      out += text[i++];
      continue;
    }
    auto end = i;
    while (end < text.size() && !is_end(text[end]))
      ++end;
    std::string token = text.substr(i, end - i);
    auto at = token.rfind('@');
    if (at != std::string::npos) {
      auto scheme = token.find("://");
      auto start = scheme != std::string::npos && scheme < at ? scheme + 3 : 0;
      auto colon = token.find(':', start);
      if (colon != std::string::npos && colon < at &&
          token.compare(colon + 1, at - colon - 1, "***") != 0)
        token = token.substr(0, colon + 1) + "***" + token.substr(at);
    }
    out += token;
    i = end;
  }
  return out;
}

void reader::problem(const toml::node* n, const std::string& path,
                     const std::string& msg) {
  int line = n ? static_cast<int>(n->source().begin.line) : 0;
  out_.push_back({file_, line, path, msg});
}

void reader::problem_at(int line, const std::string& path,
                        const std::string& msg) {
  out_.push_back({file_, line, path, msg});
}

void reader::check_keys(const toml::table& t, const std::string& path,
                        std::initializer_list<const char*> known) {
  for (auto&& [k, v] : t) {
    bool ok = false;
    for (auto name : known)
      ok = ok || k.str() == name;
    if (!ok)
      problem_at(static_cast<int>(k.source().begin.line),
                 join(path, std::string{k.str()}), "unknown key");
  }
}

void reader::read(const toml::table& t, const std::string& path,
                  const char* key, std::string& out) {
  auto* n = t.get(key);
  if (!n)
    return;
  if (auto v = n->value<std::string>())
    out = *v;
  else
    problem(n, join(path, key),
            std::string{"must be a string, got "} + type_name(*n));
}

void reader::read(const toml::table& t, const std::string& path,
                  const char* key, std::int64_t& out, std::int64_t lo,
                  std::int64_t hi) {
  auto* n = t.get(key);
  if (!n)
    return;
  if (!n->is_integer()) {
    problem(n, join(path, key),
            std::string{"must be an integer, got "} + type_name(*n));
    return;
  }
  auto v = n->value<std::int64_t>().value_or(0);
  if (v < lo || v > hi) {
    problem(n, join(path, key),
            "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                "] (got " + std::to_string(v) + ")");
    return;
  }
  out = v;
}

void reader::read(const toml::table& t, const std::string& path,
                  const char* key, int& out, int lo, int hi) {
  std::int64_t v = out;
  read(t, path, key, v, lo, hi);
  out = static_cast<int>(v);
}

void reader::read(const toml::table& t, const std::string& path,
                  const char* key, bool& out) {
  auto* n = t.get(key);
  if (!n)
    return;
  if (auto v = n->value<bool>(); v && n->is_boolean())
    out = *v;
  else
    problem(n, join(path, key),
            std::string{"must be true or false, got "} + type_name(*n));
}

void reader::read(const toml::table& t, const std::string& path,
                  const char* key, double& out) {
  auto* n = t.get(key);
  if (!n)
    return;
  if (auto v = n->value<double>();
      v && (n->is_floating_point() || n->is_integer()))
    out = *v;
  else
    problem(n, join(path, key),
            std::string{"must be a number, got "} + type_name(*n));
}

void reader::read_duration(const toml::table& t, const std::string& path,
                           const char* key, duration_ms& out) {
  auto* n = t.get(key);
  if (!n)
    return;
  auto s = n->value<std::string>();
  if (!s || !n->is_string()) {
    problem(n, join(path, key),
            std::string{"must be a duration string like \"250ms\", \"3s\", "
                        "\"5m\", got "} +
                type_name(*n));
    return;
  }
  auto d = parse_duration(*s);
  if (!d) {
    problem(n, join(path, key),
            "malformed duration \"" + *s +
                "\" (expected a number and one of ms, s, m, h, d)");
    return;
  }
  out = *d;
}

std::string reader::type_name(const toml::node& n) {
  switch (n.type()) {
  case toml::node_type::string:
    return "a string";
  case toml::node_type::integer:
    return "an integer";
  case toml::node_type::floating_point:
    return "a float";
  case toml::node_type::boolean:
    return "a boolean";
  case toml::node_type::array:
    return "an array";
  case toml::node_type::table:
    return "a table";
  default:
    return "a date/time";
  }
}

void check_nats_url(reader& r, const toml::node* n, const std::string& path,
                    const std::string& url) {
  if (url.empty()) {
    r.problem(n, path, "must not be empty");
    return;
  }
  std::stringstream ss{url};
  std::string one;
  while (std::getline(ss, one, ',')) {
    while (!one.empty() && one.front() == ' ')
      one.erase(0, 1);
    if (one.rfind("nats://", 0) != 0 && one.rfind("tls://", 0) != 0)
      r.problem(n, path,
                "\"" + redact(one) + "\" must start with nats:// or tls://");
  }
}

void check_pg_url(reader& r, const toml::node* n, const std::string& path,
                  const std::string& url) {
  if (url.rfind("postgres://", 0) != 0 && url.rfind("postgresql://", 0) != 0)
    r.problem(n, path,
              "\"" + redact(url) +
                  "\" must start with postgres:// or postgresql://");
}

void check_host_port(reader& r, const toml::node* n, const std::string& path,
                     const std::string& addr) {
  auto colon = addr.rfind(':');
  bool ok = colon != std::string::npos && colon > 0 && colon + 1 < addr.size();
  if (ok) {
    for (std::size_t i = colon + 1; i < addr.size(); ++i)
      ok = ok && std::isdigit(static_cast<unsigned char>(addr[i]));
    ok = ok && std::atoi(addr.c_str() + colon + 1) <= 65535;
  }
  if (!ok)
    r.problem(n, path, "must be host:port (got \"" + addr + "\")");
}

} // namespace troupe::config_detail
