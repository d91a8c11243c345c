#pragma once

// Owns the job actors of one pipeline on one node.
//
// Accepts:
//   (submit_atom, job_spec, uint64 delivery)
//       run a job (queued locally while max_in_flight jobs run)
//   (cancel_atom, string job_id)   -> ok_atom | errc::unknown_job
//   (stats_atom)                   -> pipeline_stats
//   (get_atom, string job_id)      -> caf::actor of the running job actor
//   (tree_atom, int32 limit)       -> vector<job_brief> (live tree, stats.hpp)
//   (now_atom, string job_id)      -> bool: a job waiting for a retry runs now
//   (credit_atom)                  -> int32 free slots (credit-based fetch)
//   (fill_atom)                    a tenant slot freed (tenant_gate)
//   (waiting_atom, string job_id, bool)  a job actor entered/left a retry wait
//   job_result                     from its job actors
//   (wake_atom, int64 tick)        self: parked jobs may be due
// Sends (finished_atom, uint64 delivery, job_result) to the intake once per
// submitted delivery; the intake acts on it as actors/delivery_verdict.hpp
// decides (ack, nak, term or neither).
// A job actor that dies without a result is restarted from its last
// checkpoint (it claims the job again), at most `max_restarts` times.

#include <cstdint>
#include <memory>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "actors/job_actor.hpp"
#include "actors/stage_kind.hpp"
#include "actors/tenant_gate.hpp"

namespace troupe {

/// What a pipeline supervisor needs, given at spawn.
struct supervisor_deps {
  std::shared_ptr<const job_deps> job;
  /// Receives (finished_atom, uint64 delivery, job_result); may be null.
  caf::actor intake;
  /// Restarts of one job's actor before the delivery is given up (not acked,
  /// so the broker redelivers it later).
  int max_restarts = 3;
  /// Per-tenant concurrency shared by the node's supervisors; may be null.
  std::shared_ptr<tenant_gate> gate;
};

/// Spawns the supervisor of `pipe`.
caf::actor spawn_pipeline_supervisor(caf::actor_system& sys,
                                     std::shared_ptr<const pipeline_def> pipe,
                                     supervisor_deps deps);

} // namespace troupe
