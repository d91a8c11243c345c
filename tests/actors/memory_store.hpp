#pragma once

// In-memory implementation of the store protocol (see actors/job_actor.hpp)
// for unit tests of actor logic. The data lives in a memory_db that the test
// reads directly: with CAF's test coordinator everything runs on one thread.

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/store_actor.hpp"
#include "messages/job.hpp"

namespace troupe::test {

struct job_row {
  job_spec spec;
  job_state state = job_state::queued;
  std::int64_t epoch = 0;
  std::int32_t life = 1;
  std::int32_t start_stage = 0;
  std::int32_t stage_index = 0;
  std::int64_t next_attempt_at_ms = 0;
  /// Waits in the store until then (job_write::wait_in_store); 0: not.
  std::int64_t run_at_ms = 0;
  /// The scheduler's publications (job_spec::gen).
  std::int32_t gen = 0;
  std::string last_error;
  std::string result;
  std::string progress;
  /// The callback record (job_snapshot::callback) and its token, kept
  /// whole here (PostgreSQL keeps only its hash).
  std::string callback;
  std::string callback_token;
  std::map<std::int32_t, checkpoint> checkpoints;
  std::vector<attempt_record> attempts;
  std::vector<job_event> events;
  int claims = 0;
};

struct memory_db {
  std::map<std::string, job_row> jobs;
  /// The next N writes fail with errc::unavailable (store down).
  int fail_next_writes = 0;
  /// The next N writes are refused as unstorable (PostgreSQL refusing the
  /// data, e.g. U+0000 in jsonb).
  int refuse_next_writes = 0;
  int writes = 0;
  /// Jobs created by a write (speculation) rather than by a claim.
  int creates = 0;
  /// Release writes received (job_write::release).
  int releases = 0;
  /// Releases wait instead of being answered at once, until the store
  /// receives answer_releases_write() (answered in the store's own context:
  /// a promise cannot be delivered from outside an actor).
  bool hold_releases = false;
  std::vector<std::pair<std::string, caf::typed_response_promise<ok_atom>>>
      held_releases;
  /// What the store does with a release: queued again if running.
  void release(const std::string& job_id);
  /// The next N claims commit but their reply is lost (errc::unavailable):
  /// a claim whose commit was in doubt.
  int lose_next_claim_replies = 0;

  /// Replays a job from `from_stage`: a new life, later checkpoints dropped,
  /// the history of the earlier life kept.
  void replay(const std::string& job_id, std::int32_t from_stage);

  /// Pretends that another node took the job (moves the epoch on).
  void steal(const std::string& job_id) { ++jobs[job_id].epoch; }

  /// Does what the scheduler does when a waiting job is due: queued, no
  /// longer waiting, published as the next generation (returned).
  std::int32_t publish_due(const std::string& job_id);

  /// Does what troupe.api.v1.complete does: records `completion` (JSON
  /// object text) on a waiting job whose token matches. False if refused.
  bool complete(const std::string& job_id, const std::string& token,
                const std::string& completion);
};

/// The write that makes a memory store carry out and answer the releases
/// it holds (memory_db::hold_releases).
job_write answer_releases_write();

/// Spawns a store actor over `db`.
store_actor spawn_memory_store(caf::actor_system& sys,
                               std::shared_ptr<memory_db> db);

/// Spawns an actor that appends every job_event it receives to `out`.
caf::actor spawn_event_collector(caf::actor_system& sys,
                                 std::shared_ptr<std::vector<job_event>> out);

/// What an intake learns: one entry per finished delivery.
struct finished_delivery {
  std::uint64_t delivery;
  job_result result;
};

/// Spawns an intake stand-in collecting (finished_atom, delivery, result).
caf::actor
spawn_intake_collector(caf::actor_system& sys,
                       std::shared_ptr<std::vector<finished_delivery>> out);

} // namespace troupe::test
