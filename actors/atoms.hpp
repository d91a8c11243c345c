#pragma once

// Atoms of troupe's actor protocols (CAF 0.17: at most 10 characters).

#include <caf/atom.hpp>

namespace troupe {

/// Positive acknowledgement of a request.
using ok_atom = caf::atom_constant<caf::atom("ok")>;
/// job -> store: take a job (bump epoch, return its snapshot).
using claim_atom = caf::atom_constant<caf::atom("claim")>;
/// job -> self: the retry delay elapsed.
using retry_atom = caf::atom_constant<caf::atom("retry")>;
/// stage kind -> stage actor -> job (with the attempt's seq): the work of
/// an attempt that waited for a resource began (stage_kind::queues_attempts).
using started_atom = caf::atom_constant<caf::atom("started")>;
/// job -> self: the per-attempt timeout elapsed.
using timeout_atom = caf::atom_constant<caf::atom("attempt_to")>;
/// anyone -> job / supervisor: cancel a job.
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
/// intake -> supervisor: run a job.
using submit_atom = caf::atom_constant<caf::atom("submit")>;
/// supervisor -> intake: a delivered job reached an outcome.
using finished_atom = caf::atom_constant<caf::atom("finished")>;
/// anyone -> supervisor: report counters.
using stats_atom = caf::atom_constant<caf::atom("stats")>;
/// anyone -> supervisor: look up a running job actor.
using get_atom = caf::atom_constant<caf::atom("get")>;
/// supervisor -> intake: number of free slots.
using credit_atom = caf::atom_constant<caf::atom("credit")>;
/// anyone -> supervisor / job: describe the live supervision tree.
using tree_atom = caf::atom_constant<caf::atom("tree")>;
/// anyone -> supervisor / job: run a job waiting for its retry now.
using now_atom = caf::atom_constant<caf::atom("retry_now")>;
/// job -> supervisor: (waiting_atom, job_id, bool) entering/leaving a retry
/// wait, so that the node can report jobs waiting for a retry.
using waiting_atom = caf::atom_constant<caf::atom("waiting")>;
/// tenant_gate -> supervisor: a tenant slot freed, look at the queue again.
using fill_atom = caf::atom_constant<caf::atom("fill")>;
/// supervisor -> job: the speculation window (job_deps::speculate) ended;
/// supervisor -> self: windows may have ended (one tick for all its jobs).
using speculate_atom = caf::atom_constant<caf::atom("speculate")>;
/// supervisor -> self: (wake_atom, int64 tick) parked jobs may be due.
using wake_atom = caf::atom_constant<caf::atom("wake")>;
/// stage kind -> stage actor (std::string report) -> job (int64 seq,
/// std::string report): the attempt reported progress or a heartbeat (one
/// JSON object, docs/stages.md).
using progress_atom = caf::atom_constant<caf::atom("progress")>;
/// job -> self: (beat_atom, int64 seq) check the attempt's heartbeat
/// timeout; (beat_atom, int64 seq, bool) flush its latest report.
using beat_atom = caf::atom_constant<caf::atom("beat")>;
/// job -> self: re-send a write that failed because the store was down.
using rewrite_atom = caf::atom_constant<caf::atom("rewrite")>;

/// cluster_member -> self: publish a heartbeat and check for silence.
using tick_atom = caf::atom_constant<caf::atom("tick")>;
/// anyone -> cluster_member: announce "draining" or "up".
using state_atom = caf::atom_constant<caf::atom("state")>;
/// anyone -> cluster_member: say goodbye ("down") and stop.
using leave_atom = caf::atom_constant<caf::atom("leave")>;
/// cluster_member -> listener: a member changed state.
using member_atom = caf::atom_constant<caf::atom("member")>;
/// cluster_member -> listener: another process uses our node id.
using conflict_atom = caf::atom_constant<caf::atom("conflict")>;

} // namespace troupe
