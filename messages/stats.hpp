#pragma once

// Counters reported by actors for the shell, metrics and tests.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

namespace troupe {

/// Counters of one pipeline supervisor on one node since it started.
struct pipeline_stats {
  std::string pipeline;
  std::int64_t running = 0;
  std::int64_t queued = 0;
  std::int64_t max_in_flight = 0;
  std::int64_t succeeded = 0;
  std::int64_t dead_lettered = 0;
  std::int64_t cancelled = 0;
  /// Jobs that were already terminal when delivered (duplicates).
  std::int64_t skipped = 0;
  /// Runs given up because another node owns the job, or the store failed.
  std::int64_t abandoned = 0;
  /// Job actors restarted after dying unexpectedly.
  std::int64_t restarts = 0;
  /// Of `running`: jobs waiting for a retry.
  std::int64_t waiting = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pipeline_stats& x) {
  return f(caf::meta::type_name("pipeline_stats"), x.pipeline, x.running,
           x.queued, x.max_in_flight, x.succeeded, x.dead_lettered, x.cancelled,
           x.skipped, x.abandoned, x.restarts, x.waiting);
}

} // namespace troupe

namespace troupe {

/// One job actor as the supervision tree shows it (`troupe shell` `tree`).
/// One of the stages a job runs in parallel (a graph pipeline), for `tree`.
struct stage_brief {
  std::string stage;
  std::int32_t stage_index = -1;
  std::int32_t attempt = 0;
  /// waiting_for_slot | running | retrying | committing
  std::string state;
  std::uint64_t stage_actor = 0;
  std::int64_t for_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stage_brief& x) {
  return f(caf::meta::type_name("stage_brief"), x.stage, x.stage_index,
           x.attempt, x.state, x.stage_actor, x.for_ms);
}

struct job_brief {
  std::string job_id;
  std::string pipeline;
  /// claiming | running | waiting_for_slot (its attempt waits for an exec
  /// thread or a max_concurrency slot; its timeout is not running) |
  /// retrying | hibernating | finishing | queued (held by the supervisor,
  /// waiting for a free slot)
  std::string state;
  std::string stage;
  std::int32_t stage_index = -1;
  std::int32_t attempt = 0;
  std::int32_t life = 1;
  /// CAF actor ids (0: none), so an operator can tell restarts apart.
  std::uint64_t job_actor = 0;
  std::uint64_t stage_actor = 0;
  /// Milliseconds in the current state (attempt running or retry wait).
  std::int64_t for_ms = 0;
  /// Restarts of this job's actor on this node.
  std::int32_t restarts = 0;
  /// The stages running in parallel (graph pipelines), else empty.
  std::vector<stage_brief> branches;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_brief& x) {
  return f(caf::meta::type_name("job_brief"), x.job_id, x.pipeline, x.state,
           x.stage, x.stage_index, x.attempt, x.life, x.job_actor,
           x.stage_actor, x.for_ms, x.restarts, x.branches);
}

} // namespace troupe
