#pragma once

// Owns the job actors of one pipeline on one node. Its protocol is the
// typed interface `pipeline_supervisor_actor` below, so the compiler checks
// the implementation against it. Senders that hold a plain `caf::actor`
// (job actors, the intake) reach the same handlers.
//
// Sends (finished_atom, uint64 delivery, job_result) to the intake once per
// submitted delivery; the intake acts on it as actors/delivery_verdict.hpp
// decides (ack, nak, term or neither).
// A job actor that dies without a result is restarted from its last
// checkpoint (it claims the job again), at most `max_restarts` times.

#include <cstdint>
#include <memory>

#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/typed_actor.hpp>

#include "actors/job_actor.hpp"
#include "actors/stage_kind.hpp"
#include "actors/tenant_gate.hpp"
#include "messages/stats.hpp"

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

using pipeline_supervisor_actor = caf::typed_actor<
    // Run a job (queued locally while max_in_flight jobs run).
    caf::reacts_to<submit_atom, job_spec, std::uint64_t>,
    // Cancel a job held here; errc::unknown_job if it is not.
    caf::replies_to<cancel_atom, std::string>::with<ok_atom>,
    caf::replies_to<stats_atom>::with<pipeline_stats>,
    // The running job actor of a job; errc::unknown_job if none.
    caf::replies_to<get_atom, std::string>::with<caf::actor>,
    // The live tree, at most `limit` jobs (stats.hpp).
    caf::replies_to<tree_atom, std::int32_t>::with<std::vector<job_brief>>,
    // A job waiting for a retry runs now: whether one was waiting.
    caf::replies_to<now_atom, std::string>::with<bool>,
    // Free slots, for the intake's credit-based fetch.
    caf::replies_to<credit_atom>::with<std::int32_t>,
    // A tenant slot freed (tenant_gate).
    caf::reacts_to<fill_atom>,
    // A job actor entered (true) or left a retry wait.
    caf::reacts_to<waiting_atom, std::string, bool>,
    // A job actor's outcome.
    caf::reacts_to<job_result>,
    // Self: parked jobs may be due (the tick of the earliest wake-up).
    caf::reacts_to<wake_atom, std::int64_t>,
    // Self: speculation windows may have ended (pipeline_speculation.cpp).
    caf::reacts_to<speculate_atom>>;

/// Spawns the supervisor of `pipe`.
pipeline_supervisor_actor
spawn_pipeline_supervisor(caf::actor_system& sys,
                          std::shared_ptr<const pipeline_def> pipe,
                          supervisor_deps deps);

} // namespace troupe
