#include "actors/job_actor_internal.hpp"

#include "actors/atoms.hpp"
#include "messages/errc.hpp"

// Taking a job from the store (claim), resuming it from what the store has,
// and recording input that cannot run.

namespace troupe::job_detail {

namespace {

/// Takes the store's copy of the job: its spec, epoch, life and outputs,
/// and positions the job at its first stage without a checkpoint.
void load_snapshot(self_ptr self, job_snapshot& snap) {
  auto& st = self->state;
  st.epoch = snap.epoch;
  st.life = snap.life;
  // The store's copy of the spec wins: a redelivered message may be stale.
  if (!snap.spec.job_id.empty()) {
    auto submitted = st.spec.submitted_at_ms; // the delivery knows it
    auto resumed = st.spec.resumed;
    st.spec = std::move(snap.spec);
    st.spec.submitted_at_ms = submitted;
    st.spec.resumed = resumed;
  }
  auto n = st.pipe->config.stages.size();
  st.outputs.assign(n, std::string{});
  for (auto& cp : snap.checkpoints)
    if (cp.stage_index >= 0 && static_cast<std::size_t>(cp.stage_index) < n)
      st.outputs[cp.stage_index] = std::move(cp.output);
  st.stage = 0;
  while (st.stage < static_cast<std::int32_t>(n) &&
         !st.outputs[st.stage].empty())
    ++st.stage;
}

} // namespace

void on_claimed(self_ptr self, job_snapshot& snap) {
  auto& st = self->state;
  if (is_terminal(snap.state)) {
    job_result res;
    res.state = snap.state;
    res.outcome = job_outcome::already_terminal;
    report(self, std::move(res));
    return;
  }
  load_snapshot(self, snap);
  restore_details(self, snap.progress);
  st.callback = std::move(snap.callback);
  st.children = std::move(snap.children);
  if (st.cancel_requested) {
    finish_cancelled(self);
    return;
  }
  if (!st.spec.resumed)
    publish_now(self, make_event(self, event_type::job_started));
  auto n = static_cast<std::int32_t>(st.pipe->config.stages.size());
  if (st.stage == n) {
    // Every stage has a checkpoint: the previous run died between the last
    // checkpoint and the terminal write.
    auto w = make_write(self, job_state::succeeded);
    w.stage_index = n - 1;
    w.result = n > 0 ? st.outputs.back() : "null";
    auto done = succeeded_event(self, w.result);
    finish_with(self, std::move(w), {std::move(done)});
    return;
  }
  if (st.pipe->graph.parallel) {
    resume_graph(self, snap);
    return;
  }
  // Attempts of this stage in this life that already failed count: retries
  // are decided from the system of record, not from the broker or memory.
  std::int32_t failed = 0;
  std::string last_error;
  for (const auto& a : snap.attempts)
    if (a.life == st.life && a.stage_index == st.stage && !a.ok) {
      ++failed;
      last_error = a.error_code + ": " + a.error_message;
    }
  st.attempt = failed;
  if (resume_children(self, snap))
    return;
  const auto& policy = st.pipe->config.stages[st.stage].retry;
  if (failed >= policy.max_attempts) {
    auto w = make_write(self, job_state::dead_lettered);
    w.last_error = last_error;
    auto dead = make_event(self, event_type::job_dead_lettered);
    dead.error = last_error;
    finish_with(self, std::move(w), {std::move(dead)}, st.stage);
    return;
  }
  run_stage(self);
}

void record_invalid(self_ptr self) {
  auto& st = self->state;
  // Undecodable input is created dead-lettered, never claimed: a create
  // cannot touch a job that exists (job_exists: see on_job_exists), so junk
  // published with a live job's id does not dead-letter that job.
  enter_phase(self, job_phase::finishing);
  st.epoch = 1;
  auto code = st.spec.invalid_code.empty() ? std::string{"invalid_payload"}
                                           : st.spec.invalid_code;
  auto w = make_write(self, job_state::dead_lettered);
  w.create = true;
  w.spec = st.spec;
  w.started_at_ms = now_ms(self);
  commit_dead_letter(self, std::move(w), code, st.spec.invalid_reason);
}

void schedule_in_store(self_ptr self) {
  auto& st = self->state;
  enter_phase(self, job_phase::claiming);
  st.scheduling = true;
  st.epoch = 1;
  auto w = make_write(self, job_state::scheduled);
  w.create = true;
  w.spec = st.spec;
  w.wait_in_store = true;
  w.next_attempt_at_ms = st.spec.run_at_ms;
  // A job that exists already (the same key published again) is left as
  // it is: see on_job_exists.
  commit(self, std::move(w), {}, [self] { report_waiting_in_store(self); });
}

void report_waiting_in_store(self_ptr self) {
  if (self->state.cancel_requested && self->state.scheduling) {
    // Cancelled while it was being scheduled: the row is ours (epoch 1).
    self->state.scheduling = false;
    finish_cancelled(self);
    return;
  }
  job_result res;
  res.outcome = job_outcome::waiting_in_store;
  res.state = self->state.scheduling ? job_state::scheduled
              : self->state.phase == job_phase::handing_to_store
                  ? job_state::waiting
                  : job_state::retrying;
  report(self, std::move(res));
}

void claim(self_ptr self) {
  auto& st = self->state;
  enter_phase(self, job_phase::claiming);
  self->request(st.deps->store, caf::infinite, claim_atom::value, st.spec)
      .then([self](job_snapshot& snap) { on_claimed(self, snap); },
            [self](caf::error& err) {
              if (code_of(err) == errc::superseded) {
                // The store holds the job for later, or has published it
                // again since this message: this delivery is stale.
                report_waiting_in_store(self);
                return;
              }
              if (code_of(err) == errc::conflict ||
                  code_of(err) == errc::unstorable) {
                // The delivery itself is wrong; the job (if any) is left
                // alone and the message is dropped, not retried.
                job_result res;
                res.outcome = code_of(err) == errc::conflict
                                  ? job_outcome::conflict
                                  : job_outcome::unrecordable;
                res.error = describe(err);
                report(self, std::move(res));
                return;
              }
              // Could not take the job (store down, or fenced): report without
              // acking so that the broker redelivers it later.
              abandon(self, err);
            });
}

} // namespace troupe::job_detail
