#pragma once

// One actor per running job: a state machine that runs the pipeline's stages
// in order, each attempt in a monitored stage actor, applies each stage's
// retry policy, and commits every transition through the store before it
// moves on.
//
// Accepts:
//   (int64 seq, stage_outcome)   from its stage actor
//   (cancel_atom)                stop the running stage, end `cancelled`
//   (retry_atom, int64 seq)      self: backoff elapsed
//   (timeout_atom, int64 seq)    self: attempt timeout elapsed
//   (progress_atom, int64 seq, string)  from its stage actor: a report
//   (beat_atom, int64 seq[, bool]) self: heartbeat check / report flush
//   (tree_atom)     -> job_brief  what it is doing (for `tree`)
//   (now_atom)      -> bool       skip a retry wait (false if not waiting)
// Talks to the store (see store protocol below) and sends job_result to its
// parent (the pipeline supervisor) exactly once before it quits.
//
// Store protocol: store_actor (actors/store_actor.hpp), implemented by
// runtime's PostgreSQL store and by the in-memory store of the tests.
//
// Speculation (job_deps::speculate): a fresh delivery runs its stages before
// anything is written, keeping checkpoints, attempts and events in memory.
// It ends when the last stage succeeds, a stage fails (unless its retry is
// due inside the window: then the failed attempt is held too), a cancel
// arrives or the window passes (then with a `running` write; the
// supervisor tells its jobs, with one timer for all of them, at most a
// quarter of a window late: pipeline_speculation.cpp); from then on
// the job is
// taken as claimed at epoch 1 and its next write, whatever it is, is a
// `create` carrying everything held (events are published after it, in the
// order they happened). If the job exists already, the store's state wins:
// what ran here is dropped and the job is claimed (stages are at-least-once).

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/behavior.hpp>

#include "actors/stage_kind.hpp"
#include "actors/store_actor.hpp"
#include "messages/job.hpp"

namespace troupe {

/// What a job actor needs from the world, given at spawn.
struct job_deps {
  /// The system of record (actors/store_actor.hpp).
  store_actor store;
  /// Receives job_event messages, or std::vector<job_event> (several at
  /// once, in order), once they are committed; may be null.
  caf::actor events;
  std::string node_id;
  /// Wall clock in milliseconds since the epoch (injected for tests).
  std::function<std::int64_t()> now_ms;
  /// Seed of the job's jitter RNG (mixed with the job id).
  std::uint64_t seed = 0;
  /// Delay before re-sending a write the store could not commit.
  duration_ms rewrite_delay{500};
  /// Retry waits at least this long park the job: once the `retrying`
  /// state is committed the actor reports job_result::park_ms and quits;
  /// its supervisor starts a new one (which claims the job) when the wait
  /// ends. A waiting job then costs a few hundred bytes, not an actor.
  duration_ms park_after{1000};
  /// Retry waits at least this long (0: none) are handed to the store
  /// instead (job_write::wait_in_store): the delivery is acked, the job
  /// costs nothing on any node and outlives every node, and the scheduler
  /// publishes it again when it is due. Needs a scheduler
  /// (runtime/node/job_scheduler.hpp) on some node.
  duration_ms store_after{0};
  /// A fresh delivery (job_spec::fresh) runs at once and writes nothing
  /// until it is still running after this long, a stage fails (and its
  /// retry is not due inside the window) or it is done; that first write
  /// creates the job with everything held (a job done within the window is one
  /// commit). The price: a crash within the window re-runs its completed
  /// stages. Zero claims first, always.
  duration_ms speculate{0};
  /// A result at most this long (bytes of JSON text) rides in the
  /// job.succeeded event; a longer one is left out (`result_omitted`) and
  /// is fetched with the status API.
  std::size_t event_result_max = 64 * 1024;
  /// A stage's reports (progress, heartbeats) are published and stored at
  /// most once per this interval; the latest wins, a final 100 % goes out
  /// at once.
  duration_ms progress_interval{1000};
  /// Pipelines a spawned child may name (this node's; empty: any name).
  std::set<std::string> pipelines;
};

/// Spawns a job actor for `spec` that reports its job_result to `parent`.
/// The caller monitors it if it wants to learn about crashes.
caf::actor spawn_job_actor(caf::actor_system& sys, job_spec spec,
                           std::shared_ptr<const pipeline_def> pipe,
                           std::shared_ptr<const job_deps> deps,
                           caf::actor parent);

} // namespace troupe
