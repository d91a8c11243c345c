#pragma once

// The `troupe` subcommands. Each is implemented in runtime/cmd_<name>.cpp and
// returns the process exit code. Parsing of the command line lives in
// runtime/cli/cli.cpp so that every command can be called from tests directly.

#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/config_loader.hpp"

namespace troupe {

/// Options shared by every command that logs.
struct log_options {
  std::string level;  ///< empty: from config, else "info"
  std::string format; ///< "text", "json" or empty (config / default)
};

struct node_options {
  std::string config_file;
  std::string node_id;
  log_options log;
};

struct dev_options {
  std::string config_file; ///< empty: the built-in demo configuration
  std::string dir = ".troupe/dev";
  int nats_port = 4222;
  int pg_port = 55432;
  /// Submit this many demo jobs after start-up (0 = none).
  int demo_jobs = 0;
  /// Stop after the demo jobs finished (instead of running until Ctrl-C).
  bool exit_after_demo = false;
  /// Start the servers only (a cluster of `troupe node`s is started by hand).
  bool servers_only = false;
  log_options log;
};

struct submit_options {
  std::string pipeline;
  std::string payload = "{}";
  std::string key;
  std::string tenant;
  std::string nats_url;
  std::string config_file;
  int count = 1;
  bool wait = false;
  /// --delay (a duration: "10m") and --at (RFC 3339 UTC, or ms since the
  /// epoch): when the jobs may start.
  std::string delay;
  std::string at;
};

struct shell_options {
  std::string nats_url;
  /// NATS user; the password comes from `password_file` or
  /// TROUPE_NATS_PASSWORD, a token from `token_file` or TROUPE_NATS_TOKEN.
  std::string user;
  std::string password_file;
  std::string token_file;
  std::string creds;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string prefix;
  std::string commands;
  bool json = false;
  bool no_color = false;
  std::int64_t timeout_ms = 5000;
};

struct migrate_options {
  std::string config_file;
};

int cmd_node(const node_options& opts);
int cmd_dev(const dev_options& opts);
int cmd_submit(const submit_options& opts);
int cmd_shell(const shell_options& opts);
int cmd_migrate(const migrate_options& opts);
int cmd_config_check(const std::vector<std::string>& files);
int cmd_version();

/// Loads a configuration file for `command` (with environment overrides);
/// on problems prints each with its location to stderr and returns nullopt.
/// How commands load a configuration: TROUPE_* overrides from the
/// environment, stage kinds checked against stage_catalog().
config_context command_config_context();

std::optional<troupe_config> load_config_for(const char* command,
                                             const std::string& path);

/// Parses argv and runs the selected command.
int run_cli(int argc, char** argv);

} // namespace troupe
