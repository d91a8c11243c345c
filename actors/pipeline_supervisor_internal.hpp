#pragma once

// Internals of the pipeline supervisor (actors/pipeline_supervisor.hpp),
// shared by its source files: pipeline_supervisor.cpp (behavior, slots,
// results) and pipeline_parking.cpp (jobs that wait for a long retry with no
// actor). Not part of the actors library's interface.

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <memory_resource>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <caf/all.hpp>

#include "actors/pipeline_supervisor.hpp"
#include "messages/stats.hpp"

namespace troupe::supervisor_detail {

struct job_entry {
  job_spec spec;
  std::uint64_t delivery = 0;
  caf::actor actor;
  int restarts = 0;
  bool cancel = false;
  /// The job actor waits for a retry.
  bool waiting = false;
  /// Holds one of its tenant's slots in the gate.
  bool gated = false;
};

using clock_type = caf::actor_clock::clock_type;

/// A job waiting for a long retry with no actor (job_result::park_ms): what
/// it takes to start it again (its new actor claims it and loads payload
/// and checkpoints from the store). Kept apart from the running jobs, small,
/// and allocated from the supervisor's own pool: 100,000 of them must not
/// be scattered over the pages their freed actors leave behind.
struct parked_job {
  explicit parked_job(std::pmr::memory_resource* mr)
      : tenant(mr), correlation_id(mr) {}
  std::pmr::string tenant;
  std::pmr::string correlation_id;
  std::int32_t priority = 0;
  std::int64_t submitted_at_ms = 0;
  std::uint64_t delivery = 0;
  int restarts = 0;
  bool gated = false;
  /// Tags the timer that wakes it (a retry-now may wake it earlier).
  std::uint32_t seq = 0;
  std::int32_t stage = -1;
  std::int32_t attempt = 0;
  std::int32_t life = 1;
  std::int64_t since_ms = 0;
  std::uint64_t stream_seq = 0;
  std::int32_t gen = 0;
};

/// When a parked job is due; a min-heap of these drives one timer.
struct wake_up {
  clock_type::time_point due;
  std::uint32_t seq;
  std::pmr::string job_id;
  bool operator>(const wake_up& x) const { return due > x.due; }
};

/// A fresh job's speculation window (job_deps::speculate) ends at `due`.
struct speculation_end {
  clock_type::time_point due;
  caf::actor_addr job;
};

struct supervisor_state {
  std::shared_ptr<const pipeline_def> pipe;
  supervisor_deps deps;
  std::unordered_map<std::string, job_entry> running;
  std::unordered_map<caf::actor_addr, std::string> by_actor;
  std::deque<job_entry> queued;
  std::pmr::unsynchronized_pool_resource pool;
  std::pmr::unordered_map<std::pmr::string, parked_job> parked{&pool};
  std::pmr::vector<wake_up> wake_ups{&pool};
  /// The earliest wake-up tick already scheduled (max: none).
  clock_type::time_point next_tick = clock_type::time_point::max();
  std::uint32_t next_park_seq = 0;
  /// Jobs started fresh, oldest first: one window each, so also by `due`.
  std::deque<speculation_end> speculating;
  /// A speculate tick is scheduled.
  bool speculation_tick = false;
  /// Jobs given up here whose release the store has not answered yet
  /// (pipeline_release.cpp).
  std::unordered_set<std::string> releasing;
  pipeline_stats stats;

  static inline const char* name = "pipeline_supervisor";
};

using self_ptr = pipeline_supervisor_actor::stateful_pointer<supervisor_state>;

/// Spawns the job actor of `entry` and holds it as running.
void start_job(self_ptr self, job_entry entry);

// pipeline_parking.cpp
/// The job's actor quit to wait for its retry (job_outcome::parked).
void park(self_ptr self, const job_result& res);
/// Starts a parked job again (with a cancel if `cancel`).
void wake(self_ptr self, decltype(supervisor_state::parked)::iterator i,
          bool cancel = false);
/// Wakes the parked jobs that are due and schedules the next tick.
void wake_due(self_ptr self);

// pipeline_speculation.cpp
/// Remembers when the speculation window of the fresh job just started
/// ends, and schedules the tick that tells it.
void watch_speculation(self_ptr self, const job_entry& entry);
/// Tells the jobs whose window ended; schedules the next tick.
void end_due_speculations(self_ptr self);

// pipeline_release.cpp
/// Asks the store to queue again a job this node gave up (job_outcome::
/// abandoned) while its lease may still hold it.
void release_abandoned(self_ptr self, const std::string& job_id);
/// A delivery of a job whose release is under way goes back to the broker
/// for a moment (true); false if none is.
bool turned_away_while_releasing(self_ptr self, const job_spec& spec,
                                 std::uint64_t delivery);

} // namespace troupe::supervisor_detail
