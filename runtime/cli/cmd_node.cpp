#include <cstdio>

#include <spdlog/spdlog.h>

#include "config/config_loader.hpp"
#include "runtime/cli/commands.hpp"
#include "runtime/node/node.hpp"
#include "runtime/observe/logging.hpp"

namespace troupe {

int cmd_node(const node_options& opts) {
  auto loaded = load_config_for("node", opts.config_file);
  if (!loaded)
    return 2;
  auto cfg = std::move(*loaded);
  if (!opts.node_id.empty())
    cfg.node.id = opts.node_id;
  std::string err;
  auto fmt = opts.log.format.empty() ? cfg.node.log_format : opts.log.format;
  auto lvl = opts.log.level.empty() ? cfg.node.log_level : opts.log.level;
  if (!setup_logging(fmt, lvl, &err)) {
    std::fprintf(stderr, "troupe node: %s\n", err.c_str());
    return 2;
  }
  return run_node(cfg);
}

} // namespace troupe
