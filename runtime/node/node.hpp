#pragma once

// One troupe node: the actor system, the NATS edge (intake, submit API,
// admin verbs, heartbeats), the store and the pipelines, started in order
// and stopped in reverse order.

#include <memory>

#include <caf/error.hpp>

#include "config/config.hpp"

namespace troupe {

/// Extra behaviour of a node started by `troupe dev`.
struct node_run_options {
  /// Submit this many demo jobs once the node is ready (0 = none).
  int demo_jobs = 0;
  /// Return once the demo jobs reached terminal states.
  bool exit_after_demo = false;
};

class node {
public:
  explicit node(troupe_config cfg);
  /// Stops whatever is still running (see stop()).
  ~node();

  node(const node&) = delete;
  node& operator=(const node&) = delete;

  /// Waits (bounded by node.startup_timeout) for NATS and PostgreSQL, then
  /// starts every part. On error, the parts already started are stopped
  /// again and the error says what failed.
  caf::error start();

  /// Runs in the calling thread until shutdown is requested (see
  /// runtime/common/shutdown.hpp), an admin drain finished, the node's own
  /// actors failed, or (with exit_after_demo) the demo is done; finishes
  /// in-flight jobs within node.drain_grace, then stops. Returns the exit code.
  int run(const node_run_options& opts = {});

  /// Stops every part in reverse order of start. Idempotent.
  void stop();

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

/// Starts a node, runs it and stops it: the process exit code (2 when it
/// cannot start).
int run_node(const troupe_config& cfg, const node_run_options& opts = {});

} // namespace troupe
