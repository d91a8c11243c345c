#pragma once

// Plain data describing jobs, their attempts, checkpoints, events and the
// writes a job actor asks the store to commit. Everything here is copyable
// data with a free inspect(); JSON codecs live in messages/json_codec.hpp.
// Payloads and stage outputs are carried as JSON *text*: a job's payload is
// parsed once on intake and never re-parsed per stage.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <caf/meta/type_name.hpp>

namespace troupe {

/// Lifecycle of a job. `retrying` is a state of its own so that a job
/// waiting for its next attempt never looks merely "running".
enum class job_state : std::uint8_t {
  queued,
  running,
  retrying,
  succeeded,
  dead_lettered,
  cancelled,
  /// Waiting in the store for its time (`run_at`): a delayed job, or a job
  /// enqueued by SQL. The scheduler publishes it when it is due.
  scheduled,
  /// A callback stage waits in the store for an outside system to complete
  /// it (troupe.api.v1.complete) or for its deadline (`run_at`).
  waiting,
};

/// Wire name of a state ("dead_lettered").
std::string to_string(job_state x);

/// Parses a wire name; returns false if unknown.
bool from_string(std::string_view text, job_state& out) noexcept;

/// True for succeeded, dead_lettered and cancelled.
constexpr bool is_terminal(job_state x) noexcept {
  return x == job_state::succeeded || x == job_state::dead_lettered ||
         x == job_state::cancelled;
}

/// What a publisher asked for: one job of one pipeline.
struct job_spec {
  std::string job_id;
  std::string pipeline;
  std::string tenant;
  std::string correlation_id;
  /// The job's payload as JSON text.
  std::string payload = "null";
  std::int32_t priority = 0;
  /// Set when the delivered message cannot run (undecodable, or for a
  /// pipeline no node runs): the job is recorded and dead-lettered at once
  /// with `invalid_code` and this reason.
  std::string invalid_reason;
  /// Error code of an invalid job (default invalid_payload).
  std::string invalid_code;
  /// When the job was published (JetStream timestamp, ms since the epoch;
  /// 0 if unknown): the start of its end-to-end latency.
  std::int64_t submitted_at_ms = 0;
  /// First delivery of a newly published job (not a redelivery, replay or
  /// restart): its job actor may run before it claims the job (see
  /// job_deps::speculate).
  bool fresh = false;
  /// Started again after a parked retry wait (job_result::park_ms): it
  /// claims the job to load it and announces no new job.started.
  bool resumed = false;
  /// JetStream stream sequence of the delivered message (0: none). Two
  /// deliveries with the same sequence are the same message redelivered.
  std::uint64_t stream_seq = 0;
  /// A replay's life (from its message id `<job_id>#<life>`), 0 otherwise:
  /// its claim takes the job only if the store has it in that life.
  std::int32_t replay_life = 0;
  /// When the job may start (ms since the epoch; 0: now). A delivery due
  /// later is handed to the store as `scheduled` and acked.
  std::int64_t run_at_ms = 0;
  /// Publication of the job by the scheduler (`Troupe-Gen`; 0: published
  /// by a client). A claim takes the job only from the newest publication,
  /// so a stale message of a job the store has republished changes nothing.
  std::int32_t gen = 0;
  /// W3C trace context the job was submitted with (messages/trace_context;
  /// empty: none). The store's copy wins on a claim.
  std::string traceparent;
  std::string tracestate;
  /// The job that spawned this one (a child job, docs/workflows.md), from
  /// the store; empty for a job a client submitted. Its terminal write
  /// lets the parent resume once every sibling is terminal.
  std::string parent_id;
  /// The batch the job belongs to (docs/workflows.md), from the store;
  /// its terminal write may complete the batch.
  std::string batch_id;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_spec& x) {
  return f(caf::meta::type_name("job_spec"), x.job_id, x.pipeline, x.tenant,
           x.correlation_id, x.payload, x.priority, x.invalid_reason,
           x.invalid_code, x.submitted_at_ms, x.fresh, x.resumed, x.stream_seq,
           x.replay_life, x.run_at_ms, x.gen, x.traceparent, x.tracestate,
           x.parent_id, x.batch_id);
}

/// A child job a stage asked for (its output's `spawn`): created in the
/// store with the write that parks its parent (docs/workflows.md).
struct spawn_child {
  std::string job_id;
  std::string pipeline;
  /// JSON text.
  std::string payload = "null";
  std::int32_t priority = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, spawn_child& x) {
  return f(caf::meta::type_name("spawn_child"), x.job_id, x.pipeline, x.payload,
           x.priority);
}

/// The record of one stage attempt, successful or not.
struct attempt_record {
  std::int32_t stage_index = 0;
  std::string stage;
  /// 1-based attempt number within the stage (within one life of the job).
  std::int32_t attempt = 1;
  /// Replays start a new life; attempts of earlier lives are kept.
  std::int32_t life = 1;
  std::int64_t started_at_ms = 0;
  std::int64_t duration_ms = 0;
  std::string node;
  bool ok = false;
  /// Machine-readable error class (e.g. "timeout", "exit_code", "bad_input").
  std::string error_code;
  std::string error_message;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, attempt_record& x) {
  return f(caf::meta::type_name("attempt_record"), x.stage_index, x.stage,
           x.attempt, x.life, x.started_at_ms, x.duration_ms, x.node, x.ok,
           x.error_code, x.error_message);
}

/// The durable output of a completed stage. A job resumed elsewhere starts at
/// the first stage without a checkpoint.
struct checkpoint {
  std::int32_t stage_index = 0;
  std::string stage;
  /// The stage's output as JSON text.
  std::string output = "null";
  std::int32_t attempts = 1;
  std::int64_t duration_ms = 0;
  std::int64_t finished_at_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, checkpoint& x) {
  return f(caf::meta::type_name("checkpoint"), x.stage_index, x.stage, x.output,
           x.attempts, x.duration_ms, x.finished_at_ms);
}

/// A lifecycle event, published on `<prefix>.events.<pipeline>.<job_id>`.
struct job_event {
  /// job.started, stage.started, stage.failed, stage.succeeded, job.retrying,
  /// job.succeeded, job.dead_lettered, job.cancelled
  std::string type;
  std::string job_id;
  std::string pipeline;
  std::string stage;
  std::int32_t stage_index = -1;
  std::int32_t attempt = 0;
  std::string node;
  std::int64_t time_ms = 0;
  std::string error_code;
  std::string error;
  /// Delay before the next attempt (job.retrying only).
  std::int64_t next_retry_ms = -1;
  std::string correlation_id;
  std::string tenant;
  /// Duration of the attempt (stage.succeeded, stage.failed), else -1.
  std::int64_t duration_ms = -1;
  /// From publication to this terminal event (job.succeeded,
  /// job.dead_lettered, job.cancelled) when known, else -1.
  std::int64_t latency_ms = -1;
  /// The job's result as JSON text (job.succeeded, when it is at most
  /// job_deps::event_result_max bytes), else empty.
  std::string result;
  /// Size of a result left out for its size (job.succeeded: fetch it with
  /// the status API), else -1.
  std::int64_t result_bytes = -1;
  /// What a stage reported (stage.progress): a JSON object with
  /// `progress` (0..1) and/or `message`, else empty.
  std::string progress;
  /// Wall-clock deadline of a callback stage's wait (job.waiting), else -1.
  std::int64_t deadline_ms = -1;
  /// Child jobs a stage spawned (job.spawned), else -1.
  std::int64_t children = -1;
  /// The job's trace (from its traceparent) and the span the event belongs
  /// to (the attempt's for stage events, the job's otherwise); empty when
  /// the job has no trace context.
  std::string trace_id;
  std::string span_id;
  /// The span `span_id` hangs under: the job's span for stage events, the
  /// submitter's span (its traceparent's parent id) for job events.
  std::string parent_span_id;
  /// Where the node sends the callback request, and the request itself
  /// (job.waiting). Never encoded into the event: the request carries the
  /// completion token, which only the callback's subscribers may see.
  std::string notify_subject;
  std::string notify_body;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_event& x) {
  return f(caf::meta::type_name("job_event"), x.type, x.job_id, x.pipeline,
           x.stage, x.stage_index, x.attempt, x.node, x.time_ms, x.error_code,
           x.error, x.next_retry_ms, x.correlation_id, x.tenant, x.duration_ms,
           x.latency_ms, x.result, x.result_bytes, x.progress, x.deadline_ms,
           x.trace_id, x.span_id, x.parent_span_id, x.notify_subject,
           x.notify_body, x.children);
}

/// Everything the store knows about a job when a node takes it.
struct job_snapshot {
  job_spec spec;
  job_state state = job_state::queued;
  /// Fencing token of this run: every write of the run carries it.
  std::int64_t epoch = 0;
  /// Current life (1 + number of replays).
  std::int32_t life = 1;
  /// First stage to run in this life (replay from a stage sets it).
  std::int32_t start_stage = 0;
  std::vector<checkpoint> checkpoints;
  std::vector<attempt_record> attempts;
  /// True if the job was created by this claim (first delivery).
  bool created = false;
  /// What the job's running stage last reported (jobs.progress, JSON
  /// text; empty if nothing): its `details` go to the next attempt of
  /// that stage in that life.
  std::string progress;
  /// The job's callback record (jobs.callback, JSON text; empty if none):
  /// the wait of a callback stage, and its completion once an outside
  /// system sent one (actors/callback_stage.hpp).
  std::string callback;
  /// The job's wait for its children (jobs.children, JSON text; empty if
  /// none): {"stage_index", "life", "policy", "total", "since_ms"} plus
  /// "results", each child's {"job_id", "pipeline", "state", "result",
  /// "error"} in spawn order, read by the claim.
  std::string children;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_snapshot& x) {
  return f(caf::meta::type_name("job_snapshot"), x.spec, x.state, x.epoch,
           x.life, x.start_stage, x.checkpoints, x.attempts, x.created,
           x.progress, x.callback, x.children);
}

/// One atomic change of a job, committed by the store (possibly grouped with
/// other jobs' writes in one transaction). Conditional on `epoch`: a node
/// that lost the job changes nothing and gets errc::stale_epoch.
struct job_write {
  std::string job_id;
  std::string pipeline;
  std::int64_t epoch = 0;
  job_state state = job_state::running;
  std::int32_t stage_index = 0;
  std::int32_t attempt = 0;
  /// Wall-clock time of the next attempt (retrying only), else 0.
  std::int64_t next_attempt_at_ms = 0;
  /// The same as a wait (ms) decided at `decided_ns` on the node's steady
  /// clock, or -1 (next_attempt_at_ms is an absolute time from outside).
  /// The store writes the wait left, so that the node's wall clock moving
  /// between the decision and the write changes nothing (chaos seed 1).
  std::int64_t wait_ms = -1;
  std::int64_t decided_ns = 0;
  std::string last_error;
  /// Zero or one checkpoint to store.
  std::vector<checkpoint> checkpoints;
  /// Finished attempts to append to the history.
  std::vector<attempt_record> attempts;
  /// Final output (succeeded only), JSON text.
  std::string result;
  /// Events to append to the event log (and publish after the commit).
  std::vector<job_event> events;
  /// Creates the job (epoch 1) with everything above in one commit instead
  /// of updating it; fails with errc::job_exists if the job exists. `spec`
  /// gives the columns of the new row. Used by jobs that ran before their
  /// claim (job_deps::speculate).
  bool create = false;
  job_spec spec;
  /// Start of the job's first attempt (create only).
  std::int64_t started_at_ms = 0;
  /// The store holds the job until next_attempt_at_ms (`run_at`): nothing
  /// on any node waits for it, and the scheduler publishes it when it is
  /// due (a `scheduled` create, or a long `retrying` wait).
  bool wait_in_store = false;
  /// The running stage's latest report (JSON text) to store as the job's
  /// progress; empty leaves it as it is.
  std::string progress;
  /// A `waiting` write's callback wait: the token (stored only as its
  /// SHA-256), stage, life, attempt and deadline (next_attempt_at_ms) make
  /// the job's callback record.
  std::string callback_token;
  std::int64_t callback_since_ms = 0;
  /// The job's parent (job_spec::parent_id): a terminal write lets the
  /// store resume it once all its children are terminal.
  std::string parent_id;
  /// The job's batch (job_spec::batch_id): a terminal write may complete it.
  std::string batch_id;
  /// A `waiting` write's children: created `scheduled` with this write,
  /// and the job waits in the store until all are terminal. `children`
  /// is the wait's record (JSON text, see job_snapshot::children).
  std::vector<spawn_child> spawn;
  std::string children;
  /// Gives up a job this node holds but no actor runs any more (a claim
  /// whose commit was in doubt, a job actor that crashed too often): the
  /// store makes it `queued` (epoch + 1, no owner) if this node's lease
  /// still holds it, so that the next delivery on any node takes it
  /// instead of waiting for this node or its lease. Only job_id counts.
  bool release = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_write& x) {
  return f(caf::meta::type_name("job_write"), x.job_id, x.pipeline, x.epoch,
           x.state, x.stage_index, x.attempt, x.next_attempt_at_ms, x.wait_ms,
           x.decided_ns, x.last_error, x.checkpoints, x.attempts, x.result,
           x.events, x.create, x.spec, x.started_at_ms, x.wait_in_store,
           x.progress, x.callback_token, x.callback_since_ms, x.parent_id,
           x.batch_id, x.spawn, x.children, x.release);
}

/// What a stage attempt produced.
struct stage_outcome {
  bool ok = false;
  /// Output as JSON text (ok only).
  std::string output = "null";
  std::string error_code;
  std::string error_message;
  /// False for failures that must never be retried (bad input).
  bool retryable = true;
  /// Not an end but a wait (a callback stage): the attempt waits in the
  /// store under this token until an outside system completes it or
  /// `await_ms` pass; `await_subject` ("": the pipeline's default) gets
  /// `output` (the callback request) once the wait is committed.
  std::string await_token;
  std::int64_t await_ms = 0;
  std::string await_subject;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stage_outcome& x) {
  return f(caf::meta::type_name("stage_outcome"), x.ok, x.output, x.error_code,
           x.error_message, x.retryable, x.await_token, x.await_ms,
           x.await_subject);
}

/// Convenience constructors.
stage_outcome stage_success(std::string output_json);
stage_outcome stage_failure(std::string code, std::string message,
                            bool retryable = true);

/// How a job's run ended, or why a delivery was turned away before one.
enum class job_outcome : std::uint8_t {
  /// The run committed a terminal state (job_result::state).
  finished,
  /// Nothing ran: the job was terminal when claimed, or the delivery is
  /// another message of a job held here (a duplicate).
  already_terminal,
  /// This delivery is the same stream message as the delivery held under
  /// job_result::same_as (a redelivery while the job still runs here).
  same_message,
  /// Not finished: the job waits job_result::park_ms for its next attempt,
  /// committed as `retrying`. Its actor quits rather than sit idle; the
  /// supervisor keeps the delivery and starts a new actor when the wait ends
  /// (job_result::attempt and ::life describe the wait meanwhile).
  parked,
  /// Not started: hand the delivery back to the broker for
  /// job_result::requeue_ms (its tenant is at its concurrency limit here).
  requeued,
  /// The run was given up (store unreachable, or crashed repeatedly).
  abandoned,
  /// Given up because another node owns the job now (newer epoch).
  fenced,
  /// The delivery conflicts with the job in the store (errc::conflict); the
  /// job is not touched.
  conflict,
  /// Nothing about this delivery can be recorded (PostgreSQL refuses even a
  /// sanitised record).
  unrecordable,
  /// The store holds the job until its time (job_write::wait_in_store), or
  /// this delivery is a stale publication of a job the store waits with or
  /// has published again (errc::superseded): nothing runs here, the
  /// delivery is acked.
  waiting_in_store,
};

/// Name of an outcome, for logs and tests (not a wire name).
std::string to_string(job_outcome x);

/// True for the outcomes of a run that stopped without a result of its own
/// (abandoned, fenced): the delivery must not be acked.
constexpr bool gave_up(job_outcome x) noexcept {
  return x == job_outcome::abandoned || x == job_outcome::fenced;
}

/// A job actor's final report to its pipeline supervisor (and the
/// supervisor's to its intake).
struct job_result {
  std::string job_id;
  job_outcome outcome = job_outcome::finished;
  /// The committed terminal state (finished only).
  job_state state = job_state::succeeded;
  /// Stage that failed (dead_lettered, or parked waiting for its retry) or
  /// -1.
  std::int32_t failed_stage = -1;
  std::string error;
  /// How long the delivery goes back to the broker (requeued only).
  std::int64_t requeue_ms = 0;
  /// How long the job waits for its next attempt (parked only).
  std::int64_t park_ms = 0;
  std::int32_t attempt = 0;
  std::int32_t life = 1;
  /// The delivery this one duplicates (same_message only).
  std::uint64_t same_as = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_result& x) {
  return f(caf::meta::type_name("job_result"), x.job_id, x.outcome, x.state,
           x.failed_stage, x.error, x.requeue_ms, x.park_ms, x.attempt, x.life,
           x.same_as);
}

} // namespace troupe
