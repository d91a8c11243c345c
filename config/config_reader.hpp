#pragma once

// Internal to troupe_config (the public API is config/config_loader.hpp):
// the reader that collects problems with their file, line and key path
// while reading one source, and the value checks that both the file's
// sections and the TROUPE_* environment overrides apply.

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

// Header-only with TOML 1.1's multi-line inline tables, which the documented
// configuration format uses (stages = [ { ..., retry = { ... } } ] across
// lines); Debian's compiled library is built without them.
#define TOML_HEADER_ONLY 1
#define TOML_ENABLE_UNRELEASED_FEATURES 1
#include <toml++/toml.h>

#include "config/config_loader.hpp"

namespace troupe::config_detail {

/// Replaces the password of every `[scheme://]user:pass@host` in `text` by
/// `***`. Applied to every message, so that no check can leak a secret.
std::string redact(const std::string& text);

/// Collects problems while reading one source.
class reader {
public:
  reader(std::string file, std::vector<config_problem>& out)
      : file_(std::move(file)), out_(out) {}

  void problem(const toml::node* n, const std::string& path,
               const std::string& msg);

  void problem_at(int line, const std::string& path, const std::string& msg);

  /// Reports keys of `t` that are not in `known`.
  void check_keys(const toml::table& t, const std::string& path,
                  std::initializer_list<const char*> known);

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  void read(const toml::table& t, const std::string& path, const char* key,
            std::string& out);

  void read(const toml::table& t, const std::string& path, const char* key,
            std::int64_t& out, std::int64_t lo, std::int64_t hi);

  void read(const toml::table& t, const std::string& path, const char* key,
            int& out, int lo, int hi);

  void read(const toml::table& t, const std::string& path, const char* key,
            bool& out);

  void read(const toml::table& t, const std::string& path, const char* key,
            double& out);

  void read_duration(const toml::table& t, const std::string& path,
                     const char* key, duration_ms& out);

  static std::string type_name(const toml::node& n);

  const std::string& file() const { return file_; }

private:
  std::string file_;
  std::vector<config_problem>& out_;
};

/// `url` is one NATS URL or a comma-separated list of them.
void check_nats_url(reader& r, const toml::node* n, const std::string& path,
                    const std::string& url);

void check_pg_url(reader& r, const toml::node* n, const std::string& path,
                  const std::string& url);

void check_host_port(reader& r, const toml::node* n, const std::string& path,
                     const std::string& addr);

} // namespace troupe::config_detail
