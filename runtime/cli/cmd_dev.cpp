#include <cstdio>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "config/config_loader.hpp"
#include "messages/errc.hpp"
#include "runtime/cli/commands.hpp"
#include "runtime/cli/local_servers.hpp"
#include "runtime/common/shutdown.hpp"
#include "runtime/node/node.hpp"
#include "runtime/observe/logging.hpp"
#include "runtime/pg/migrations.hpp"

namespace troupe {

namespace {

/// The built-in demo configuration (a copy of config/demo.toml, so that the
/// binary runs from any directory).
const char* builtin_demo_config = R"(
[node]
id = "dev"
max_in_flight = 1000

[pipelines.demo]
max_in_flight = 500
stages = [
  { name = "fetch", kind = "sleep", duration = "5ms" },
  { name = "transform", kind = "fault", probability = 0.1, poison_key = "poison",
    retry = { max_attempts = 4, initial = "20ms", multiplier = 2.0, max = "500ms", jitter = "full" } },
  { name = "store", kind = "noop" },
]
)";

/// `--servers-only`: migrates, then holds the servers until Ctrl-C or
/// SIGTERM while the operator's own nodes use them.
int hold_servers(const troupe_config& cfg) {
  auto v = apply_migrations(cfg.postgres.url);
  if (!v) {
    std::fprintf(stderr, "troupe dev: %s\n", describe(v.error()).c_str());
    return 1;
  }
  std::printf("troupe dev: servers only (schema at version %d); run nodes "
              "with\n  TROUPE_NATS_URL=%s TROUPE_PG_URL=%s\n",
              *v, cfg.nats.url.c_str(), cfg.postgres.url.c_str());
  std::fflush(stdout);
  while (!wait_for_shutdown(std::chrono::milliseconds{500})) {
  }
  return 0;
}

} // namespace

int cmd_dev(const dev_options& opts) {
  std::string err;
  if (!setup_logging(opts.log.format, opts.log.level, &err)) {
    std::fprintf(stderr, "troupe dev: %s\n", err.c_str());
    return 2;
  }
  auto ctx = command_config_context();
  auto res = opts.config_file.empty()
                 ? parse_config(builtin_demo_config, "<built-in demo>", ctx)
                 : load_config_file(opts.config_file, ctx);
  if (!res.ok()) {
    for (const auto& p : res.problems)
      std::fprintf(stderr, "%s\n", p.to_string().c_str());
    return 2;
  }
  auto cfg = std::move(*res.config);
  std::printf("troupe dev: starting nats-server and PostgreSQL under %s\n",
              opts.dir.c_str());
  std::fflush(stdout);
  local_nats nats;
  if (auto e = nats.start(opts.dir, opts.nats_port)) {
    std::fprintf(stderr, "troupe dev: %s\n", describe(e).c_str());
    return 1;
  }
  local_postgres pg;
  if (auto e = pg.start(opts.dir, opts.pg_port)) {
    std::fprintf(stderr, "troupe dev: %s\n", describe(e).c_str());
    return 1; // nats stops in its destructor
  }
  cfg.nats.url = nats.url();
  cfg.postgres.url = pg.url();
  // What the dev node accepts while its PostgreSQL is away waits on disk,
  // as a production node's should (docs/configuration.md, spool_dir).
  if (cfg.node.spool_dir.empty())
    cfg.node.spool_dir = opts.dir + "/spool";
  std::printf("troupe dev: up\n"
              "  nats      %s (JetStream, data in %s/nats)\n"
              "  postgres  %s (data in %s/pg)\n"
              "  %s",
              cfg.nats.url.c_str(), opts.dir.c_str(), cfg.postgres.url.c_str(),
              opts.dir.c_str(), opts.servers_only ? "no node" : "pipelines");
  if (!opts.servers_only)
    for (auto& [name, p] : cfg.pipelines)
      std::printf(" %s", name.c_str());
  std::printf("\n  stop with Ctrl-C\n");
  std::fflush(stdout);
  int rc = 0;
  if (opts.servers_only) {
    rc = hold_servers(cfg);
  } else if (!shutdown_requested()) {
    node_run_options nro;
    nro.demo_jobs = opts.demo_jobs;
    nro.exit_after_demo = opts.exit_after_demo;
    rc = run_node(cfg, nro);
  }
  std::printf("troupe dev: stopping servers\n");
  std::fflush(stdout);
  pg.stop();
  nats.stop();
  std::printf("troupe dev: stopped\n");
  return rc;
}

} // namespace troupe
