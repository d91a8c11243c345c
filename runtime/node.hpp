#pragma once

// Wiring of one troupe node: actor system, NATS bridge, store, pipelines.

#include "config/config.hpp"

namespace troupe {

/// Extra behaviour of a node started by `troupe dev`.
struct node_run_options {
  /// Submit this many demo jobs once the node is ready (0 = none).
  int demo_jobs = 0;
  /// Return once the demo jobs reached terminal states.
  bool exit_after_demo = false;
};

/// Runs a node in the calling thread until shutdown is requested (see
/// runtime/shutdown.hpp) or, with exit_after_demo, the demo finished.
/// Returns the process exit code.
int run_node(const troupe_config& cfg, const node_run_options& opts = {});

} // namespace troupe
