#pragma once

// Reads TOML configuration into troupe_config and validates it, collecting
// every problem (not just the first) with its file, line and key path.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "config/stage_params.hpp"

namespace troupe {

/// One thing wrong with a configuration, with its location.
struct config_problem {
  std::string file; ///< source name, e.g. "config/bad.toml"
  int line = 0;     ///< 1-based, 0 when unknown
  std::string path; ///< key path, e.g. "pipelines.ingest.stages[1].retry"
  std::string message;

  /// Renders `file:line: path: message`.
  std::string to_string() const;
};

/// Outcome of loading: a config when `problems` is empty.
struct config_result {
  std::optional<troupe_config> config;
  std::vector<config_problem> problems;

  bool ok() const noexcept { return config.has_value() && problems.empty(); }
};

/// Looks up an environment variable; returns nullopt when unset.
using env_lookup = std::function<std::optional<std::string>(const char*)>;

/// Reads the process environment.
env_lookup process_env();

/// Options that tell the validator what exists outside the config file.
struct config_context {
  /// Stage kinds known to this binary and what each accepts (the stage
  /// registry's catalogue, see stage_catalog() in runtime/exec/exec_stage.hpp).
  /// Empty: kinds and their parameters are not checked.
  std::vector<stage_kind_schema> stage_kinds;
  /// Environment for TROUPE_* overrides.
  env_lookup env;
};

/// Parses and validates TOML text; `source_name` is used in problems.
config_result parse_config(std::string_view text, std::string_view source_name,
                           const config_context& ctx = {});

/// Reads, parses and validates a file.
config_result load_config_file(const std::string& path,
                               const config_context& ctx = {});

/// Parses a duration such as "250ms", "3s", "1.5s", "5m", "2h"; nullopt if
/// malformed or negative.
std::optional<duration_ms> parse_duration(std::string_view text);

/// Renders a duration in the shortest exact unit ("250ms", "3s", "5m").
std::string format_duration(duration_ms d);

/// True if `s` can be one token of a NATS subject as troupe uses them
/// (pipeline names, node ids, the prefix): letters, digits, '_' and '-'.
bool is_subject_token(std::string_view s) noexcept;

/// Reads the NATS password and token from their files unless the
/// environment already set them (TROUPE_NATS_PASSWORD, TROUPE_NATS_TOKEN).
void load_nats_secrets(troupe_config& cfg);

/// The first line of a secret file (a trailing newline or carriage return
/// is not part of it); empty if unreadable.
std::string read_secret(const std::string& path);

/// Applies TROUPE_NATS_URL, TROUPE_PG_URL, TROUPE_NODE_ID, TROUPE_HTTP_ADDR.
void apply_env_overrides(troupe_config& cfg, const env_lookup& env);

} // namespace troupe
