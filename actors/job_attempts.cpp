#include "actors/job_actor_internal.hpp"

#include "actors/atoms.hpp"
#include "actors/stage_actor.hpp"
#include "messages/json_text.hpp"
#include "messages/trace_context.hpp"

// Stages and their attempts: running one, what its outcome leads to (the
// next stage, a retry, a dead letter) and cancelling what runs.

namespace troupe::job_detail {

namespace {

std::string build_input(self_ptr self, const stage_config& sc) {
  auto& st = self->state;
  // Built as text: the payload and earlier outputs are already valid JSON,
  // so they are spliced in rather than parsed and re-serialised.
  std::string in = "{\"job_id\":";
  in += json_string(st.spec.job_id);
  in += ",\"pipeline\":";
  in += json_string(st.spec.pipeline);
  in += ",\"stage\":";
  in += json_string(sc.name);
  in += ",\"stage_index\":" + std::to_string(st.stage);
  in += ",\"attempt\":" + std::to_string(st.attempt);
  in += ",\"idempotency_key\":";
  in += json_string(st.spec.job_id + ":" + sc.name);
  if (!st.spec.tenant.empty())
    in += ",\"tenant\":" + json_string(st.spec.tenant);
  if (!st.spec.correlation_id.empty())
    in += ",\"correlation_id\":" + json_string(st.spec.correlation_id);
  in += ",\"payload\":";
  in += st.spec.payload.empty() ? "null" : st.spec.payload;
  if (auto details = details_for_attempt(self); !details.empty())
    in += ",\"heartbeat_details\":" + details;
  in += ",\"previous\":{";
  bool first = true;
  // The outputs of every stage this one needs, directly or through others
  // (in a plain list: every stage before it).
  for (auto i : st.pipe->graph.ancestors[st.stage]) {
    if (st.outputs[i].empty())
      continue;
    if (!first)
      in += ',';
    first = false;
    in += json_string(st.pipe->config.stages[i].name);
    in += ':';
    in += st.outputs[i];
  }
  in += "}}";
  return in;
}

} // namespace

attempt_record finished_attempt(self_ptr self, bool ok) {
  auto& st = self->state;
  attempt_record rec;
  rec.stage_index = st.stage;
  rec.stage = st.pipe->config.stages[st.stage].name;
  rec.attempt = st.attempt;
  rec.life = st.life;
  rec.started_at_ms = st.attempt_started_ms;
  rec.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        st.attempt_ended - st.attempt_started)
                        .count();
  rec.node = st.deps->node_id;
  rec.ok = ok;
  return rec;
}

namespace {

/// A long retry wait's `retrying` state is committed: park (report
/// job_result::park_ms and quit) unless something still needs this actor.
void park_if_idle(self_ptr self, clock_type::time_point due) {
  auto& st = self->state;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      due - self->clock().now());
  if (st.phase != job_phase::backing_off || st.cancel_requested ||
      !st.writer.queue.empty()) {
    self->delayed_send(self, std::max(left, duration_ms{0}), retry_atom::value,
                       st.seq);
    return;
  }
  // The store has everything: the supervisor keeps the delivery and a
  // timer, this actor goes. 100,000 waiting jobs stay cheap.
  job_result res;
  res.outcome = job_outcome::parked;
  res.park_ms = std::max<std::int64_t>(1, left.count());
  res.failed_stage = st.stage;
  res.attempt = st.attempt;
  res.life = st.life;
  report(self, std::move(res));
}

} // namespace

// A cancel that arrives meanwhile finds the job in the store.
void wait_in_store(self_ptr self, job_write w, job_event failed,
                   job_event retrying) {
  auto& st = self->state;
  w.wait_in_store = true;
  enter_phase(self, job_phase::backing_off);
  auto seq = st.seq;
  // A cancel meanwhile commits `cancelled` after this write (on_cancel),
  // and the sequence check below then lets that finish the job.
  commit(self, std::move(w), {std::move(failed), std::move(retrying)},
         [self, seq] {
           if (seq == self->state.seq &&
               self->state.phase == job_phase::backing_off)
             report_waiting_in_store(self);
         });
}

namespace {

/// Commits `retrying` (with the failed attempt) and waits `delay` for the
/// next attempt, parks if the wait is long, or hands the job to the store
/// if it is longer still (job_deps::store_after).
void retry_later(self_ptr self, duration_ms delay, attempt_record rec,
                 job_event failed, job_event retrying) {
  auto& st = self->state;
  auto w = make_write(self, job_state::retrying);
  set_wait(self, w, delay);
  w.last_error = rec.error_code + ": " + rec.error_message;
  w.attempts.push_back(std::move(rec));
  if (st.deps->store_after.count() > 0 && delay >= st.deps->store_after) {
    wait_in_store(self, std::move(w), std::move(failed), std::move(retrying));
    return;
  }
  bool long_wait = delay >= st.deps->park_after;
  auto due = self->clock().now() + delay;
  // The timer starts now, not after the commit, so that the delay between
  // attempts is exactly the policy's; the write is ordered before the next
  // attempt's writes anyway. A long wait parks instead (below); a pending
  // timer would keep the quit actor in memory until it fired.
  if (!long_wait)
    self->delayed_send(self, delay, retry_atom::value, st.seq);
  enter_phase(self, job_phase::backing_off);
  st.waiting_since_ms = now_ms(self);
  self->send(st.parent, waiting_atom::value, st.spec.job_id, true);
  auto seq = st.seq;
  commit(self, std::move(w), {std::move(failed), std::move(retrying)},
         [self, long_wait, due, seq] {
           if (long_wait && seq == self->state.seq)
             park_if_idle(self, due);
         });
}

/// A short retry of a job still speculating: the failed attempt and its
/// events are held with the rest, and the one write that ends the
/// speculation creates the job with them (one commit instead of a
/// `retrying` create and an update). Nothing about the job is durable yet
/// either way: a node that dies now leaves its message to be delivered again.
void retry_held(self_ptr self, duration_ms delay, attempt_record rec,
                job_event failed, job_event retrying) {
  auto& st = self->state;
  st.speculation.last_error = rec.error_code + ": " + rec.error_message;
  st.speculation.attempts.push_back(std::move(rec));
  publish_now(self, std::move(failed)); // held until the create commits
  publish_now(self, std::move(retrying));
  self->delayed_send(self, delay, retry_atom::value, st.seq);
  enter_phase(self, job_phase::backing_off);
  st.waiting_since_ms = now_ms(self);
  self->send(st.parent, waiting_atom::value, st.spec.job_id, true);
}

/// Starts the current attempt's timeout, if its stage has one.
void arm_timeout(self_ptr self) {
  auto& st = self->state;
  const auto& sc = st.pipe->config.stages[st.stage];
  if (sc.timeout.count() > 0)
    self->delayed_send(self, sc.timeout, timeout_atom::value, st.seq);
}

} // namespace

stage_request make_request(self_ptr self, const stage_config& sc) {
  auto& st = self->state;
  stage_request req;
  req.job_id = st.spec.job_id;
  req.pipeline = st.spec.pipeline;
  req.stage = sc.name;
  req.stage_index = st.stage;
  req.attempt = st.attempt;
  req.idempotency_key = st.spec.job_id + ":" + sc.name;
  req.input = build_input(self, sc);
  req.life = st.life;
  if (!st.spec.traceparent.empty()) {
    req.traceparent =
        child_traceparent(st.spec.traceparent, attempt_span_id(self));
    req.tracestate = st.spec.tracestate;
  }
  return req;
}

void on_failure(self_ptr self, std::string code, std::string message,
                bool retryable) {
  auto& st = self->state;
  // Error text comes from outside (an exec stage's stderr, cut at 2 KiB):
  // the store's text and jsonb columns need valid UTF-8 without NUL.
  code = valid_text(code);
  message = valid_text(message);
  const auto& sc = st.pipe->config.stages[st.stage];
  auto decision = decide_retry(sc.retry, st.attempt, code, retryable);
  auto delay = decision == retry_decision::retry
                   ? retry_delay(sc.retry, st.attempt, st.rng)
                   : duration_ms{0};
  // A fresh job's first attempt knows its count (1): the retry or dead
  // letter write below creates the job with what ran before, unless the
  // retry is due inside the speculation window (then it is held too).
  bool held =
      decision == retry_decision::retry && retry_fits_window(self, delay);
  if (!held)
    end_speculation(self);
  auto rec = finished_attempt(self, false);
  rec.error_code = code;
  rec.error_message = message;
  auto failed = make_event(self, event_type::stage_failed);
  failed.error_code = code;
  failed.error = message;
  if (decision != retry_decision::retry) {
    dead_letter_attempt(self, std::move(rec), std::move(failed));
    return;
  }
  auto retrying = make_event(self, event_type::job_retrying);
  retrying.error_code = code;
  retrying.error = message;
  retrying.next_retry_ms = delay.count();
  if (held)
    retry_held(self, delay, std::move(rec), std::move(failed),
               std::move(retrying));
  else
    retry_later(self, delay, std::move(rec), std::move(failed),
                std::move(retrying));
}

void dead_letter_attempt(self_ptr self, attempt_record rec, job_event failed) {
  auto dead = make_event(self, event_type::job_dead_lettered);
  dead.error_code = rec.error_code;
  dead.error = rec.error_message;
  auto w = make_write(self, job_state::dead_lettered);
  w.last_error = rec.error_code + ": " + rec.error_message;
  w.attempts.push_back(std::move(rec));
  finish_with(self, std::move(w), {std::move(failed), std::move(dead)},
              self->state.stage);
}

void on_success(self_ptr self, std::string output) {
  auto& st = self->state;
  const auto& sc = st.pipe->config.stages[st.stage];
  auto rec = finished_attempt(self, true);
  checkpoint cp;
  cp.stage_index = st.stage;
  cp.stage = sc.name;
  cp.output = output;
  cp.attempts = st.attempt;
  cp.duration_ms = rec.duration_ms;
  cp.finished_at_ms = now_ms(self);
  st.outputs[st.stage] = output;
  auto succeeded = make_event(self, event_type::stage_succeeded);
  bool last = st.stage + 1 == static_cast<std::int32_t>(st.outputs.size());
  if (st.speculation.holding() && !last) {
    // Nothing is written yet: hold the checkpoint and go on at once.
    st.speculation.checkpoints.push_back(std::move(cp));
    st.speculation.attempts.push_back(std::move(rec));
    st.speculation.events.push_back(std::move(succeeded));
    ++st.stage;
    st.attempt = 0;
    run_stage(self);
    return;
  }
  end_speculation(self); // if speculating, the write below creates the job
  if (last) {
    auto w = make_write(self, job_state::succeeded);
    w.checkpoints.push_back(std::move(cp));
    w.attempts.push_back(std::move(rec));
    w.result = output;
    auto done = succeeded_event(self, w.result);
    finish_with(self, std::move(w), {std::move(succeeded), std::move(done)});
    return;
  }
  auto w = make_write(self, job_state::running);
  w.checkpoints.push_back(std::move(cp));
  w.attempts.push_back(std::move(rec));
  w.stage_index = st.stage + 1;
  w.attempt = 0;
  enter_phase(self, job_phase::committing);
  // The next stage starts only once this checkpoint is durable: a crash now
  // resumes at the next stage, never re-runs this one.
  commit(self, std::move(w), {std::move(succeeded)}, [self] {
    auto& st = self->state;
    if (st.phase != job_phase::committing)
      return; // cancelled while the checkpoint committed
    ++st.stage;
    st.attempt = 0;
    run_stage(self);
  });
}

void begin_attempt(self_ptr self) {
  auto& st = self->state;
  enter_phase(self, job_phase::running);
  st.attempt_started = self->clock().now();
  st.attempt_started_ms = now_ms(self);
  publish_now(self, make_event(self, event_type::stage_started));
  arm_timeout(self);
  start_heartbeat(self);
}

void run_stage(self_ptr self) {
  auto& st = self->state;
  const auto& sc = st.pipe->config.stages[st.stage];
  const auto& kind = st.pipe->kinds[st.stage];
  ++st.attempt;
  ++st.seq;
  // Until its work begins, a queued attempt's clock shows its wait (an
  // outcome without a start, e.g. "unavailable", is recorded from here).
  st.attempt_started = self->clock().now();
  st.attempt_started_ms = now_ms(self);
  if (st.waiting_since_ms > 0)
    self->send(st.parent, waiting_atom::value, st.spec.job_id, false);
  st.waiting_since_ms = 0;
  if (st.attempt > 1 && !st.speculation.holding()) {
    // Leaving `retrying`: record that the job runs again (a held retry
    // wrote nothing to leave).
    auto w = make_write(self, job_state::running);
    commit(self, std::move(w), {});
  }
  auto req = make_request(self, sc);
  resume_callback(self, req);
  // A queued attempt begins when its kind says so (started_atom).
  bool queued = kind->queues_attempts();
  enter_phase(self, queued ? job_phase::waiting_for_slot : job_phase::running);
  if (!queued)
    publish_now(self, make_event(self, event_type::stage_started));
  st.running = self->spawn(stage_actor, caf::actor_cast<caf::actor>(self),
                           st.seq, kind, std::move(req));
  self->monitor(st.running);
  if (!queued && !kind->waits_in_store()) {
    arm_timeout(self);
    start_heartbeat(self);
  }
}

void finish_cancelled(self_ptr self) {
  auto& st = self->state;
  if (st.phase == job_phase::finishing)
    return;
  ++st.seq; // drops pending retry and timeout timers
  stop_attempt(self);
  auto w = make_write(self, job_state::cancelled);
  w.last_error = "cancelled";
  finish_with(self, std::move(w),
              {make_event(self, event_type::job_cancelled)});
}

} // namespace troupe::job_detail
