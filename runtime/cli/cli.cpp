#include "runtime/cli/commands.hpp"

#include <iostream>

#include <CLI/CLI.hpp>

#include "runtime/common/version.hpp"

namespace troupe {

namespace {

void add_log_flags(CLI::App* cmd, log_options& log) {
  cmd->add_option("--log-level", log.level,
                  "trace|debug|info|warn|error|critical|off");
  cmd->add_option("--log-format", log.format, "text|json")
      ->check(CLI::IsMember({"text", "json"}));
}

CLI::App* add_node_command(CLI::App& app, node_options& node) {
  auto* cmd = app.add_subcommand(
      "node", "run a node until SIGTERM/SIGINT (graceful drain)");
  cmd->add_option("--config", node.config_file, "TOML configuration")
      ->required();
  cmd->add_option("--node-id", node.node_id,
                  "unique node id (default: config, TROUPE_NODE_ID, "
                  "host name)");
  add_log_flags(cmd, node.log);
  return cmd;
}

CLI::App* add_dev_command(CLI::App& app, dev_options& dev) {
  auto* cmd = app.add_subcommand(
      "dev", "start a local nats-server (JetStream) and PostgreSQL under DIR, "
             "migrate, run one node; Ctrl-C stops everything it started");
  cmd->add_option("--config", dev.config_file,
                  "TOML configuration (default: built-in demo)");
  cmd->add_option("--dir", dev.dir, "data directory")->capture_default_str();
  cmd->add_option("--nats-port", dev.nats_port, "nats-server port")
      ->capture_default_str();
  cmd->add_option("--pg-port", dev.pg_port, "PostgreSQL port")
      ->capture_default_str();
  cmd->add_option("--demo", dev.demo_jobs,
                  "submit N demo jobs once the node is up");
  cmd->add_flag("--exit", dev.exit_after_demo,
                "stop everything after the demo jobs finished");
  cmd->add_flag("--servers-only", dev.servers_only,
                "start nats-server and PostgreSQL (migrated) but no node: run "
                "your own `troupe node`s against them (docs/quickstart.md)");
  add_log_flags(cmd, dev.log);
  return cmd;
}

CLI::App* add_submit_command(CLI::App& app, submit_options& submit) {
  auto* cmd = app.add_subcommand("submit", "submit jobs over NATS");
  cmd->add_option("pipeline", submit.pipeline, "pipeline name")->required();
  cmd->add_option("--payload", submit.payload,
                  "JSON payload, or @FILE to read it from a file");
  cmd->add_option("--key", submit.key, "idempotency key (job id)");
  cmd->add_option("--tenant", submit.tenant, "tenant");
  cmd->add_option("--count", submit.count, "number of jobs")
      ->check(CLI::Range(1, 100000000));
  cmd->add_flag("--wait", submit.wait,
                "wait until the jobs end; print each as `ID STATE RESULT` "
                "(or `ID STATE CODE: MESSAGE`)");
  cmd->add_option("--delay", submit.delay,
                  "start no sooner than this from now (e.g. 90s, 10m, 2h)");
  cmd->add_option("--at", submit.at,
                  "start no sooner than this time (2026-12-24T18:00:00Z, or "
                  "ms since the epoch)");
  cmd->add_option("--nats", submit.nats_url,
                  "NATS URL (default: TROUPE_NATS_URL or "
                  "nats://127.0.0.1:4222)");
  cmd->add_option("--config", submit.config_file,
                  "read NATS settings from this configuration");
  return cmd;
}

CLI::App* add_shell_command(CLI::App& app, shell_options& shell) {
  auto* cmd = app.add_subcommand("shell", "admin actor shell");
  cmd->add_option("--nats", shell.nats_url,
                  "NATS URL (default $TROUPE_NATS_URL, then "
                  "nats://127.0.0.1:4222)");
  cmd->add_option("--user", shell.user,
                  "NATS user (default $TROUPE_NATS_USER); the password "
                  "is read from --password-file or "
                  "$TROUPE_NATS_PASSWORD, never from the command line");
  cmd->add_option("--password-file", shell.password_file,
                  "file holding the NATS password")
      ->check(CLI::ExistingFile);
  cmd->add_option("--token-file", shell.token_file,
                  "file holding a NATS token (or $TROUPE_NATS_TOKEN)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--creds", shell.creds,
                  "NATS credentials file (.creds: JWT and nkey)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--tls-ca", shell.tls_ca,
                  "CA that signs the NATS servers' certificates")
      ->check(CLI::ExistingFile);
  cmd->add_option("--tls-cert", shell.tls_cert,
                  "client certificate (with --tls-key)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--tls-key", shell.tls_key, "client key")
      ->check(CLI::ExistingFile);
  cmd->add_option("--prefix", shell.prefix,
                  "subject prefix of the cluster (default "
                  "$TROUPE_NATS_PREFIX, then troupe)");
  cmd->add_option("-c", shell.commands,
                  "run these commands (separated by ';') and exit");
  cmd->add_flag("--json", shell.json, "one JSON document per command");
  cmd->add_flag("--no-color", shell.no_color,
                "no colour even on a terminal (also: NO_COLOR)");
  cmd->add_option("--timeout", shell.timeout_ms,
                  "milliseconds to wait for a node's answer")
      ->check(CLI::Range(100, 600000));
  return cmd;
}

} // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{"troupe: a distributed job runtime on the actor model"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string{"troupe "} + version());

  node_options node;
  auto* node_cmd = add_node_command(app, node);
  dev_options dev;
  auto* dev_cmd = add_dev_command(app, dev);
  submit_options submit;
  auto* submit_cmd = add_submit_command(app, submit);
  shell_options shell;
  auto* shell_cmd = add_shell_command(app, shell);

  migrate_options migrate;
  auto* migrate_cmd =
      app.add_subcommand("migrate", "apply PostgreSQL schema migrations");
  migrate_cmd->add_option("--config", migrate.config_file, "TOML config")
      ->required();

  std::vector<std::string> check_files;
  auto* config_cmd = app.add_subcommand("config", "configuration tools");
  config_cmd->require_subcommand(1);
  auto* check_cmd = config_cmd->add_subcommand(
      "check", "validate, print every problem with its location");
  check_cmd->add_option("file", check_files, "TOML configuration files")
      ->required();

  auto* version_cmd = app.add_subcommand("version", "print the version");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  if (node_cmd->parsed())
    return cmd_node(node);
  if (dev_cmd->parsed())
    return cmd_dev(dev);
  if (submit_cmd->parsed())
    return cmd_submit(submit);
  if (shell_cmd->parsed())
    return cmd_shell(shell);
  if (migrate_cmd->parsed())
    return cmd_migrate(migrate);
  if (check_cmd->parsed())
    return cmd_config_check(check_files);
  if (version_cmd->parsed())
    return cmd_version();
  return 2;
}

} // namespace troupe
