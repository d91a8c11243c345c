#include <cstdio>

#include "config/config_loader.hpp"
#include "messages/errc.hpp"
#include "runtime/commands.hpp"
#include "runtime/migrations.hpp"
#include "runtime/nats_client.hpp"

namespace troupe {

int cmd_migrate(const migrate_options& opts) {
  config_context ctx;
  ctx.env = process_env();
  auto res = load_config_file(opts.config_file, ctx);
  if (!res.ok()) {
    for (const auto& p : res.problems)
      std::fprintf(stderr, "%s\n", p.to_string().c_str());
    return 2;
  }
  auto v = apply_migrations(res.config->postgres.url);
  if (!v) {
    std::fprintf(stderr, "troupe migrate: %s: %s\n",
                 redact_url(res.config->postgres.url).c_str(),
                 describe(v.error()).c_str());
    return 1;
  }
  std::printf("schema at version %d (%s)\n", *v,
              redact_url(res.config->postgres.url).c_str());
  return 0;
}

} // namespace troupe
