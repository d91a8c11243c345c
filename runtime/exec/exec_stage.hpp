#pragma once

// The `exec` stage kind: any program is a stage. The stage input (JSON) is
// written to its stdin; its stdout (one JSON document, or nothing) is the
// output. Exit 0 = success; an exit code listed in `retryable_exit_codes`
// (default [75], EX_TEMPFAIL) = retryable failure; any other exit code =
// permanent failure; death by a signal = retryable failure. stderr goes into
// the attempt's error. The attempt ends when the program exits; it runs in
// its own process group, which is killed then, and when the attempt is
// abandoned (timeout, cancel, node shutdown). It sees only an allow-list of
// the node's environment (never TROUPE_*) and no descriptor but its pipes.
// The wait runs on a blocking_pool thread, never on a scheduler thread; an
// attempt waiting for a thread (or for its stage's `max_concurrency`) is
// queued, and its timeout starts only with its program.
// See runtime/exec/exec_attempt.hpp for one attempt, docs/stages.md for the
// contract.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "actors/stage_kind.hpp"
#include "runtime/observe/metrics.hpp"

namespace troupe {

class blocking_pool;

/// What a node's exec attempts are doing, for /metrics; shared by all its
/// exec stages.
struct exec_stats {
  /// Attempts waiting for an exec thread or a max_concurrency slot.
  std::atomic<std::int64_t> waiting{0};
  /// Programs running.
  std::atomic<std::int64_t> running{0};
  /// Seconds from an attempt's start to its program's start.
  histogram queue_wait{latency_buckets()};
};

/// Node-wide settings of exec stages.
struct exec_options {
  /// Variables of the node's environment every program gets besides the
  /// defaults (node.exec_inherit_env): names, or prefixes ending in '*'.
  /// TROUPE_* never pass, whatever is listed.
  std::vector<std::string> inherit_env;
  /// Where attempts are counted; null counts nothing.
  std::shared_ptr<exec_stats> stats;
};

/// Factory for `exec` stages running on `pool`. While any exec stage
/// exists, the process is a child subreaper that reaps the orphans of its
/// programs (runtime/exec/child_reaper.hpp).
stage_kind_factory make_exec_stage_factory(std::shared_ptr<blocking_pool> pool,
                                           exec_options opts = {});

/// The parameters an `exec` stage accepts (docs/stages.md).
stage_kind_schema exec_stage_schema();

/// Every kind this binary runs, with what it accepts: the built-in kinds
/// and `exec`. Commands pass it to the config loader.
std::vector<stage_kind_schema> stage_catalog();

} // namespace troupe
