#pragma once

// Internals of the job actor (actors/job_actor.hpp), shared by its source
// files: job_actor.cpp (behavior, phases, finishing), job_claim.cpp (taking
// the job from the store), job_attempts.cpp (stages, attempts, retries),
// job_writes.cpp (ordered writes and events) and job_speculation.cpp
// (running before the claim). Not part of the actors library's interface.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "actors/backoff.hpp"
#include "actors/job_actor.hpp"
#include "actors/job_phase.hpp"
#include "messages/event_type.hpp"
#include "messages/job.hpp"
#include "messages/stats.hpp"

namespace troupe::job_detail {

using clock_type = caf::actor_clock::clock_type;

/// Failed writes (other than outages) before a job is dead-lettered with
/// store_write_failed rather than retried again.
constexpr std::int32_t max_write_failures = 5;

/// A write waiting for its turn; writes of one job commit strictly in order.
struct pending_write {
  job_write write;
  /// Events to publish after the commit (events already published when they
  /// happened are persisted but not published twice).
  std::vector<job_event> publish;
  std::function<void()> then;
};

/// The job's writes, committed one at a time in the order they were made
/// (job_writes.cpp).
struct ordered_writer {
  /// FIFO of writes (a vector: a deque's first block costs 512 bytes
  /// per parked job).
  std::vector<pending_write> queue;
  bool in_flight = false;
  /// Events already published but not yet persisted (ride on the next write).
  std::vector<job_event> unlogged;
  /// Writes that failed for a reason other than an outage (capped by
  /// max_write_failures).
  std::int32_t failures = 0;
  /// The job is being dead-lettered because its writes are refused.
  bool unwritable = false;

  /// Drops every queued write (the one in flight is forgotten too).
  void drop_queued() {
    std::vector<pending_write>{}.swap(queue);
    in_flight = false;
  }
};

/// What a job that runs before its claim (job_deps::speculate) holds for
/// the write that creates it (job_speculation.cpp).
struct speculation_buffer {
  enum class mode : std::uint8_t {
    /// Not speculating, or the create is committed.
    off,
    /// Stages run; nothing is written.
    holding,
    /// The speculation ended: the next write creates the job (make_create).
    create_pending,
    /// The create is queued but not committed: later events wait too
    /// (published once it commits; dropped if the job turns out to exist).
    create_unconfirmed,
  };
  mode state = mode::off;
  std::int64_t started_ms = 0;
  std::vector<checkpoint> checkpoints;
  std::vector<attempt_record> attempts;
  std::vector<job_event> events;
  /// The error of a failed attempt retried while holding ("" if none).
  std::string last_error;

  bool holding() const { return state == mode::holding; }
  /// Events wait here rather than go out: nothing about the job is
  /// committed yet.
  bool holds_events() const { return state != mode::off; }
  /// Forgets everything held (the job existed after all).
  void drop() {
    state = mode::off;
    checkpoints.clear();
    attempts.clear();
    events.clear();
    last_error.clear();
  }
};

/// What the current attempt reported (progress, heartbeats), and the
/// heartbeat details the next attempt of a stage receives
/// (job_reports.cpp).
struct stage_reports {
  /// When the current attempt last reported, or began: its heartbeat
  /// clock.
  clock_type::time_point last_beat;
  /// The latest report not yet published and stored ("" if none).
  std::string unsent;
  /// The latest report published while the job ran before its claim
  /// (speculation), to store once the job is written ("" if none).
  std::string unstored;
  /// When a report last went out.
  clock_type::time_point last_sent;
  /// The attempt whose flush timer is armed (-1: none).
  std::int64_t armed_seq = -1;
  /// The attempt whose 100 % report went out at once (only the first one
  /// skips the interval).
  std::int64_t final_seq = -1;
  /// Reports refused as malformed (logged once per job).
  std::int32_t refused = 0;
  /// The `details` of the last report that had some, for the stage and
  /// life they belong to (JSON text).
  std::int32_t details_stage = -1;
  std::int32_t details_life = 0;
  std::string details;
};

/// A stage of a graph pipeline (config/stage_graph.hpp) that runs beside
/// others: its attempts, timers and stage actor (job_graph.cpp). A linear
/// pipeline has none and uses the fields of job_actor_state instead.
struct branch {
  enum class mode : std::uint8_t {
    waiting_for_slot,
    running,
    backing_off,
    /// Its checkpoint commits; stages that need it start after.
    committing,
  };
  std::int32_t stage = 0;
  /// Attempts made at this stage in this life.
  std::int32_t attempt = 0;
  /// The current attempt's sequence number (job_actor_state::seq).
  std::int64_t seq = 0;
  mode now = mode::running;
  caf::actor running;
  clock_type::time_point started;
  clock_type::time_point ended;
  std::int64_t started_ms = 0;
  /// When its retry wait began (wall clock), for `tree`.
  std::int64_t waiting_since_ms = 0;
  /// The output, until its checkpoint commits.
  std::string output;
};

struct job_actor_state {
  job_spec spec;
  /// The id the job was delivered under, which its supervisor knows it by
  /// (undecodable input may be recorded under another: record_invalid).
  std::string delivered_id;
  std::shared_ptr<const pipeline_def> pipe;
  std::shared_ptr<const job_deps> deps;
  caf::actor parent;

  /// Changed only by enter_phase.
  job_phase phase = job_phase::starting;
  std::int64_t epoch = 0;
  std::int32_t life = 1;
  /// Output of each completed stage (empty string: not completed).
  std::vector<std::string> outputs;
  std::int32_t stage = 0;
  /// Attempts made at the current stage in this life.
  std::int32_t attempt = 0;
  /// Identifies the current attempt and its timers; bumped on every attempt
  /// and on cancel so that late messages are recognised and dropped.
  std::int64_t seq = 0;
  /// The current attempt's stage actor (waiting_for_slot, running).
  caf::actor running;
  /// When the current attempt began (its work, not its wait for a slot).
  clock_type::time_point attempt_started;
  /// When the current attempt's outcome arrived (its duration ends here even
  /// if handling it waits for a claim).
  clock_type::time_point attempt_ended;
  std::int64_t attempt_started_ms = 0;
  /// A cancel arrived: acted on at once, or when the claim completes. A
  /// request rather than a phase: it may arrive in any phase.
  bool cancel_requested = false;
  /// The delivery is due later and is being handed to the store
  /// (schedule_in_store): nothing runs here, whatever the store says.
  bool scheduling = false;
  /// When the current retry wait began (wall clock), for `tree`; 0 when the
  /// supervisor has not been told that the job waits.
  std::int64_t waiting_since_ms = 0;
  /// The store's callback record from the claim (JSON text), until the
  /// next attempt takes it (job_callback.cpp).
  std::string callback;
  /// The store's record of the job's wait for its children, with their
  /// results (JSON text), until the claim's resume takes it.
  std::string children;
  /// The stages running beside each other (graph pipelines only).
  std::vector<branch> branches;
  ordered_writer writer;
  stage_reports reports;
  speculation_buffer speculation;
  jitter_rng rng;

  static inline const char* name = "job_actor";
};

using self_ptr = caf::stateful_actor<job_actor_state>*;

// job_actor.cpp
/// The one way a job actor changes phase: checks the move (may_enter) and
/// logs one that is refused.
void enter_phase(self_ptr self, job_phase next);
/// Stops the current attempt's stage actor, if any (killing it runs its
/// cleanup, e.g. kills an exec child); its down message is not awaited.
void stop_attempt(self_ptr self);
/// Enters `finishing`, commits the terminal write `w` with `publish`, then
/// reports the committed state (with `failed_stage`, and the write's error
/// if dead-lettered) and quits.
void finish_with(self_ptr self, job_write w, std::vector<job_event> publish,
                 std::int32_t failed_stage = -1);

// job_writes.cpp
std::int64_t now_ms(self_ptr self);
/// Span ids (messages/trace_context.hpp) of the job in its life, and of
/// its current attempt: derived, so every node names them alike.
std::string job_span_id(self_ptr self);
std::string attempt_span_id(self_ptr self);
/// An event of the job's current stage and attempt.
job_event make_event(self_ptr self, event_type type);
/// The job.succeeded event, carrying `result` if it is small enough
/// (job_deps::event_result_max), else its size.
job_event succeeded_event(self_ptr self, const std::string& result);
/// Publishes an event right away (or holds it while speculating) and keeps
/// it for the next write if it belongs in the event log.
void publish_now(self_ptr self, job_event ev);
/// Sets a write's next attempt `delay` from now, as a wall time and as a
/// wait from this moment on the actor's (steady) clock.
void set_wait(self_ptr self, job_write& w, duration_ms delay);
job_write make_write(self_ptr self, job_state state);
/// Queues a write; `publish` goes out after its commit, then `then` runs.
void commit(self_ptr self, job_write w, std::vector<job_event> publish,
            std::function<void()> then = {});
void pump_writes(self_ptr self);
/// Commits `w` (a dead-lettered write) with error `code: reason` and its
/// job.dead_lettered event, then reports the outcome.
void commit_dead_letter(self_ptr self, job_write w, const std::string& code,
                        const std::string& reason);
/// Dead-letters a job whose writes PostgreSQL refuses (store_write_failed).
void dead_letter_unwritable(self_ptr self, const caf::error& err);
/// Sends the result to the supervisor and quits.
void report(self_ptr self, job_result res);
/// A newer run owns the job (or the store is down): stop, write nothing.
void abandon(self_ptr self, const caf::error& why);

// job_speculation.cpp
/// Ends a speculation (window over, a stage failed, cancel, last stage
/// done): the job goes on as claimed at epoch 1 and its next write creates
/// it with everything held.
void end_speculation(self_ptr self);
/// Whether a retry due after `delay` starts inside the speculation window
/// (false when not speculating).
bool retry_fits_window(self_ptr self, duration_ms delay);
/// Turns the first write after a speculation into that create.
void make_create(self_ptr self, job_write& w, std::vector<job_event>& publish);
/// The create found the job: drop what ran here and claim it instead.
void on_job_exists(self_ptr self);

// job_claim.cpp
void claim(self_ptr self);

/// Hands a delivery that is due later to the store as `scheduled`.
void schedule_in_store(self_ptr self);

/// Reports that the store holds the job (job_outcome::waiting_in_store).
void report_waiting_in_store(self_ptr self);
/// Records undecodable input (job_spec::invalid_reason) as a dead-lettered
/// job created under its id, or under an id of its own if that exists.
void record_invalid(self_ptr self);
void on_claimed(self_ptr self, job_snapshot& snap);

// job_reports.cpp
/// A report of the attempt `seq` (progress or heartbeat, JSON text).
void on_report(self_ptr self, std::int64_t seq, const std::string& text);
/// Publishes and stores the latest report of attempt `seq`, if any.
void flush_reports(self_ptr self, std::int64_t seq);
/// Checks the attempt `seq`'s heartbeat timeout (fails it when silent).
void check_heartbeat(self_ptr self, std::int64_t seq);
/// The attempt began: its heartbeat clock starts.
void start_heartbeat(self_ptr self);
/// Heartbeat details the current attempt receives ("" if none): the last
/// ones its stage reported in this life, here or in the store's progress.
std::string details_for_attempt(self_ptr self);
/// Takes the details of a stored progress (job_snapshot::progress).
void restore_details(self_ptr self, const std::string& progress);

// job_attempts.cpp
/// Starts the next attempt of the current stage.
void run_stage(self_ptr self);
/// The current attempt's work began: its clock and timeout start.
void begin_attempt(self_ptr self);
/// The current attempt succeeded with `output`.
void on_success(self_ptr self, std::string output);
/// The current attempt failed: retry (wait, or park) or dead-letter.
void on_failure(self_ptr self, std::string code, std::string message,
                bool retryable);
/// Cancels the job: stops what runs and commits `cancelled`.
void finish_cancelled(self_ptr self);
/// The record of the attempt that just ended.
attempt_record finished_attempt(self_ptr self, bool ok);
/// The current attempt (its record `rec`, event `failed`) failed for good:
/// commits `dead_lettered` and reports.
void dead_letter_attempt(self_ptr self, attempt_record rec, job_event failed);
/// The request for the current attempt of stage `sc`.
stage_request make_request(self_ptr self, const stage_config& sc);
/// Commits a long `retrying` wait (`w`) to the store, which publishes the
/// job again when it is due; the delivery is acked and the actor quits.
void wait_in_store(self_ptr self, job_write w, job_event failed,
                   job_event retrying);

// job_graph.cpp (pipelines whose stages run in parallel)
/// After a claim: starts every stage whose inputs are ready (or finishes
/// the job if all have run, or dead-letters it if a ready stage has no
/// attempts left).
void resume_graph(self_ptr self, const job_snapshot& snap);
/// The outcome of the branch attempt `seq`.
void on_branch_outcome(self_ptr self, std::int64_t seq, stage_outcome& out);
/// The branch attempt `seq`'s work began (it waited for a slot).
void on_branch_started(self_ptr self, std::int64_t seq);
/// The branch attempt `seq`'s retry wait is over.
void on_branch_retry(self_ptr self, std::int64_t seq);
void on_branch_timeout(self_ptr self, std::int64_t seq);
/// A branch's stage actor died (`why`) before it reported.
void on_branch_down(self_ptr self, const caf::actor_addr& who, std::string why);
/// Stops every branch's stage actor and forgets the branches.
void stop_branches(self_ptr self);
/// Skips every branch's retry wait; true if one was waiting.
bool retry_branches_now(self_ptr self);
/// What each branch is doing, for `tree`.
std::vector<stage_brief> brief_branches(self_ptr self);

// job_children.cpp
/// True if the current attempt's output may ask for child jobs (a stage
/// with `spawn = true` whose output mentions `"spawn"`).
bool spawns(self_ptr self, const stage_outcome& out);
/// Creates the children the output asks for and parks the job in the
/// store until all are terminal (or fails the attempt if the list is bad).
void spawn_children(self_ptr self, std::string output);
/// After a claim: if the job waited for the current stage's children,
/// completes that stage from their results (or waits again if some are
/// not terminal) and returns true.
bool resume_children(self_ptr self, const job_snapshot& snap);

// job_callback.cpp
/// The current attempt (a callback stage) waits for an outside system:
/// commits `waiting` with its token and deadline, sends the callback
/// request, and leaves the job to the store.
void wait_for_callback(self_ptr self, stage_outcome& out);
/// Gives the store's callback record to the first attempt after a claim;
/// an attempt that was waiting counts its time from when its wait began.
void resume_callback(self_ptr self, stage_request& req);

} // namespace troupe::job_detail
