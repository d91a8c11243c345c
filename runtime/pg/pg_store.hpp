#pragma once

// The PostgreSQL system of record, as a store_actor (actors/store_actor.hpp):
//   (claim_atom, job_spec) -> job_snapshot
//   job_write              -> ok_atom | errc::stale_epoch | errc::unavailable
//
// Group commit: requests from all job actors are collected and committed
// together, a batch when `batch_max` requests wait or `batch_delay` passed
// (at once when a writer is idle). Each batch is a handful of statements
// whatever its size (JSON record sets, not one statement per job), run by
// `pool_size` writer threads with their own connections, so no CAF scheduler
// thread ever waits on the database. Writers hand results back to the
// actor, which answers the requesters.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "actors/store_actor.hpp"
#include "config/config.hpp"
#include "runtime/observe/metrics.hpp"

namespace troupe {

/// Counters of a store, readable from any thread.
struct pg_store_stats {
  std::atomic<std::int64_t> requests{0};
  std::atomic<std::int64_t> transactions{0};
  std::atomic<std::int64_t> stale{0};
  std::atomic<std::int64_t> failures{0};
  std::atomic<std::int64_t> reconnects{0};
  /// Sum of batch commit latencies in microseconds.
  std::atomic<std::int64_t> commit_us{0};
  std::atomic<bool> healthy{true};
  /// Requests per transaction, and the time each batch took to commit.
  histogram batch_sizes{size_buckets()};
  histogram commit_seconds{latency_buckets()};
};

struct pg_store_options {
  postgres_config pg;
  /// Who holds the jobs this store claims or creates running: the node's
  /// lease in node_leases ('<node id>#<incarnation>', renewed by the
  /// scheduler), so a job's row is not written again to keep it.
  std::string lease_owner;
  /// Shared counters (created if null).
  std::shared_ptr<pg_store_stats> stats;
};

/// Spawns the store actor and its writer threads; they stop with the actor.
store_actor spawn_pg_store(caf::actor_system& sys, pg_store_options opts);

} // namespace troupe
