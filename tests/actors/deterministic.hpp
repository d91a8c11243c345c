#pragma once

// The actor system configuration of every deterministic actor test: CAF's
// test coordinator (messages and timers run only when the test says so) and
// no CAF logging.

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>

namespace troupe::test {

inline caf::actor_system_config&
deterministic_config(caf::actor_system_config& cfg) {
  cfg.set("scheduler.policy", caf::atom("testing"));
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  return cfg;
}

} // namespace troupe::test
