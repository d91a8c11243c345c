#pragma once

// The scheduler's figures (docs/scheduling.md): how fast due jobs leave
// PostgreSQL for the stream, how late they start at a steady rate, and what
// a million waiting jobs cost a node. Jobs are enqueued by SQL
// (troupe.enqueue), as an application would.

#include <functional>
#include <string>
#include <sys/types.h>
#include <vector>

#include "bench/bench_common.hpp"

namespace troupe::bench {

struct scheduler_env {
  std::string pg_url;
  /// A running node's pid, and the pipeline (one noop stage) it runs.
  pid_t node_pid = -1;
  std::string pipeline = "one";
  int runs = 3;
  bool quick = false;
};

/// Burst rate, lag p50 and p99 at a steady rate, and the node's RSS growth
/// with many jobs waiting in the store.
std::vector<figure> scheduler_figures(const scheduler_env& env);

} // namespace troupe::bench
