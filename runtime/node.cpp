#include "runtime/node.hpp"

#include <spdlog/spdlog.h>

#include "runtime/shutdown.hpp"

namespace troupe {

int run_node(const troupe_config& cfg, const node_run_options&) {
  spdlog::info("node {} up with {} pipeline(s); Ctrl-C to stop", cfg.node.id,
               cfg.pipelines.size());
  while (!wait_for_shutdown(std::chrono::milliseconds{500})) {
  }
  spdlog::info("node {} stopping", cfg.node.id);
  return 0;
}

} // namespace troupe
