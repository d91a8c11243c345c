#include <cstdio>

#include "messages/errc.hpp"
#include "runtime/cli/commands.hpp"
#include "runtime/nats/nats_client.hpp"
#include "runtime/pg/migrations.hpp"

namespace troupe {

int cmd_migrate(const migrate_options& opts) {
  auto cfg = load_config_for("migrate", opts.config_file);
  if (!cfg)
    return 2;
  auto v = apply_migrations(cfg->postgres.url);
  if (!v) {
    std::fprintf(stderr, "troupe migrate: %s: %s\n",
                 redact_url(cfg->postgres.url).c_str(),
                 describe(v.error()).c_str());
    return 1;
  }
  std::printf("schema at version %d (%s)\n", *v,
              redact_url(cfg->postgres.url).c_str());
  return 0;
}

} // namespace troupe
