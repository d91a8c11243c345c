#pragma once

// The store's side of time (docs/scheduling.md): jobs that wait in
// PostgreSQL for their `run_at` (scheduled, enqueued by SQL, long retry
// waits, rescued), handed to a publisher when due, and the leases that say
// which node still runs what. One connection, used by one thread (the
// scheduler, runtime/node/job_scheduler.hpp); every call blocks.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "config/config.hpp"

namespace troupe {

/// A job the store hands to the broker now.
struct due_job {
  std::string job_id;
  std::string pipeline;
  std::string tenant;
  std::string correlation_id;
  std::int32_t priority = 0;
  /// The publication's generation: the claim takes the job only from it.
  std::int32_t gen = 0;
  /// Why it is published: "scheduled" (its first run), "retry" (a wait in
  /// the store ended), "callback" (a callback stage was completed or its
  /// deadline passed) or "rescue" (its node stopped renewing its lease).
  std::string wake;
  /// How late it is published (ms after its run_at).
  std::int64_t lag_ms = 0;
};

/// What a pass over the due jobs found.
struct due_summary {
  std::size_t published = 0;
  std::size_t failed = 0;
  /// Lag of each published job (ms after its time).
  std::vector<std::int64_t> lags_ms;
};

/// Publishes a batch; returns the stream sequence of each one published, 0
/// for one that was not.
using due_publisher =
    std::function<std::vector<std::uint64_t>(const std::vector<due_job>&)>;

class schedule_store {
public:
  /// `lease_owner` names this node's process in node_leases and in the
  /// rows of the jobs it holds ('<node id>#<incarnation>').
  schedule_store(std::string pg_url, std::string lease_owner);
  ~schedule_store();
  schedule_store(const schedule_store&) = delete;
  schedule_store& operator=(const schedule_store&) = delete;

  /// Takes up to `limit` due jobs (FOR UPDATE SKIP LOCKED: nodes share the
  /// work without a leader), hands them to `publish`, and marks the
  /// published ones `queued` in the same transaction; the others are due
  /// again 5 s later. A crash between the
  /// publish and the commit publishes them again (same message ids: the
  /// broker drops the copies inside its duplicate window, and a claim
  /// drops them after).
  caf::expected<due_summary> publish_due(std::size_t limit,
                                         const due_publisher& publish);

  /// Running jobs whose node's lease has expired (the node died, stopped,
  /// or lost the store) become due now, with their epoch bumped so that
  /// the old run can commit nothing. Returns how many.
  caf::expected<std::size_t> rescue_expired(std::size_t limit);

  /// Extends this node's lease (node_leases), which holds every job whose
  /// lease_owner it is: one row, however many jobs the node runs.
  caf::error renew_lease(duration_ms lease);

  /// Ends this node's lease now (a clean stop): what it still holds is
  /// rescued at the next pass of any node.
  caf::error release_lease();

  /// Jobs waiting in the store: how many, how many of them are due, and
  /// how late the oldest due one is (ms).
  struct backlog {
    std::int64_t waiting = 0;
    std::int64_t due = 0;
    std::int64_t oldest_due_ms = 0;
  };
  caf::expected<backlog> count_waiting();

  /// Time until the earliest waiting job is due (nullopt: none waits).
  caf::expected<std::optional<duration_ms>> next_due();

  /// Waits up to `timeout` for a NOTIFY on `troupe_due` (a job enqueued to
  /// run now). Returns whether one came.
  caf::expected<bool> wait_for_due(duration_ms timeout);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// A lease owner's node id ('<node id>#<incarnation>' → '<node id>'); an
/// owner without an incarnation (written by an older node) is its node id.
std::string node_of_owner(const std::string& owner);

} // namespace troupe
