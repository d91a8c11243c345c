#pragma once

// Counters reported by actors for the shell, metrics and tests.

#include <cstdint>
#include <string>

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
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pipeline_stats& x) {
  return f(caf::meta::type_name("pipeline_stats"), x.pipeline, x.running,
           x.queued, x.max_in_flight, x.succeeded, x.dead_lettered, x.cancelled,
           x.skipped, x.abandoned, x.restarts);
}

} // namespace troupe
