#include "actors/job_actor.hpp"

#include <vector>

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/backoff.hpp"
#include "actors/job_actor_internal.hpp"
#include "actors/stage_actor.hpp"
#include "config/config_loader.hpp"
#include "messages/errc.hpp"
#include "messages/json_guard.hpp"
#include "messages/json_text.hpp"
#include "messages/stats.hpp"

namespace troupe {

namespace job_detail {

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
  in += ",\"previous\":{";
  bool first = true;
  for (std::int32_t i = 0; i < st.stage; ++i) {
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

void finish_cancelled(self_ptr self);
void run_stage(self_ptr self);
void on_claimed(self_ptr self, job_snapshot& snap);

/// The record of the attempt that just ended.
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

void on_failure(self_ptr self, std::string code, std::string message,
                bool retryable) {
  auto& st = self->state;
  // Error text comes from outside (an exec stage's stderr, cut at 2 KiB):
  // the store's text and jsonb columns need valid UTF-8 without NUL.
  code = valid_text(code);
  message = valid_text(message);
  // A fresh job's first attempt knows its count (1): the retry or dead
  // letter write below creates the job with what ran before.
  end_speculation(self);
  const auto& sc = st.pipe->config.stages[st.stage];
  auto rec = finished_attempt(self, false);
  rec.error_code = code;
  rec.error_message = message;
  auto failed = make_event(self, "stage.failed");
  failed.error_code = code;
  failed.error = message;
  auto decision = decide_retry(sc.retry, st.attempt, code, retryable);
  if (decision == retry_decision::retry) {
    auto delay = retry_delay(sc.retry, st.attempt, st.rng);
    auto retrying = make_event(self, "job.retrying");
    retrying.error_code = code;
    retrying.error = message;
    retrying.next_retry_ms = delay.count();
    auto w = make_write(self, job_state::retrying);
    w.next_attempt_at_ms = now_ms(self) + delay.count();
    w.last_error = code + ": " + message;
    w.attempts.push_back(std::move(rec));
    bool long_wait = delay >= st.deps->park_after;
    auto due = self->clock().now() + delay;
    // The timer starts now, not after the commit, so that the delay between
    // attempts is exactly the policy's; the write is ordered before the next
    // attempt's writes anyway. A long wait parks instead (below); a pending
    // timer would keep the quit actor in memory until it fired.
    if (!long_wait)
      self->delayed_send(self, delay, retry_atom::value, st.seq);
    st.waiting_since_ms = now_ms(self);
    self->send(st.parent, waiting_atom::value, st.spec.job_id, true);
    auto seq = st.seq;
    commit(self, std::move(w), {std::move(failed), std::move(retrying)},
           [self, long_wait, due, seq] {
             auto& st = self->state;
             if (!long_wait || seq != st.seq)
               return;
             auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                 due - self->clock().now());
             if (st.finishing || st.running || st.cancel_requested ||
                 !st.writes.empty()) {
               self->delayed_send(self, std::max(left, duration_ms{0}),
                                  retry_atom::value, st.seq);
               return;
             }
             // The store has everything: the supervisor keeps the delivery
             // and a timer, this actor goes. 100,000 waiting jobs stay cheap.
             job_result res;
             res.park_ms = std::max<std::int64_t>(1, left.count());
             res.failed_stage = st.stage;
             res.attempt = st.attempt;
             res.life = st.life;
             report(self, std::move(res));
           });
    return;
  }
  st.finishing = true;
  auto dead = make_event(self, "job.dead_lettered");
  dead.error_code = code;
  dead.error = message;
  auto w = make_write(self, job_state::dead_lettered);
  w.last_error = code + ": " + message;
  w.attempts.push_back(std::move(rec));
  auto stage = st.stage;
  auto error = w.last_error;
  commit(self, std::move(w), {std::move(failed), std::move(dead)},
         [self, stage, error] {
           job_result res;
           res.state = job_state::dead_lettered;
           res.failed_stage = stage;
           res.error = error;
           report(self, std::move(res));
         });
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
  auto succeeded = make_event(self, "stage.succeeded");
  bool last = st.stage + 1 == static_cast<std::int32_t>(st.outputs.size());
  if (st.speculating && !last) {
    // Nothing is written yet: hold the checkpoint and go on at once.
    st.held_checkpoints.push_back(std::move(cp));
    st.held_attempts.push_back(std::move(rec));
    st.held_events.push_back(std::move(succeeded));
    ++st.stage;
    st.attempt = 0;
    run_stage(self);
    return;
  }
  end_speculation(self); // if speculating, the write below creates the job
  if (last) {
    st.finishing = true;
    auto w = make_write(self, job_state::succeeded);
    w.checkpoints.push_back(std::move(cp));
    w.attempts.push_back(std::move(rec));
    w.result = output;
    auto done = make_event(self, "job.succeeded");
    commit(self, std::move(w), {std::move(succeeded), std::move(done)}, [self] {
      job_result res;
      res.state = job_state::succeeded;
      report(self, std::move(res));
    });
    return;
  }
  auto w = make_write(self, job_state::running);
  w.checkpoints.push_back(std::move(cp));
  w.attempts.push_back(std::move(rec));
  w.stage_index = st.stage + 1;
  w.attempt = 0;
  // The next stage starts only once this checkpoint is durable: a crash now
  // resumes at the next stage, never re-runs this one.
  commit(self, std::move(w), {std::move(succeeded)}, [self] {
    auto& st = self->state;
    if (st.finishing)
      return; // cancelled while the checkpoint committed
    ++st.stage;
    st.attempt = 0;
    run_stage(self);
  });
}

/// Starts the current attempt's timeout, if its stage has one.
void arm_timeout(self_ptr self) {
  auto& st = self->state;
  const auto& sc = st.pipe->config.stages[st.stage];
  if (sc.timeout.count() > 0)
    self->delayed_send(self, sc.timeout, timeout_atom::value, st.seq);
}

void begin_attempt(self_ptr self) {
  auto& st = self->state;
  st.waiting_for_slot = false;
  st.attempt_started = self->clock().now();
  st.attempt_started_ms = now_ms(self);
  publish_now(self, make_event(self, "stage.started"));
  arm_timeout(self);
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
  if (st.attempt > 1) {
    // Leaving `retrying`: record that the job runs again.
    auto w = make_write(self, job_state::running);
    commit(self, std::move(w), {});
  }
  stage_request req;
  req.job_id = st.spec.job_id;
  req.pipeline = st.spec.pipeline;
  req.stage = sc.name;
  req.stage_index = st.stage;
  req.attempt = st.attempt;
  req.idempotency_key = st.spec.job_id + ":" + sc.name;
  req.input = build_input(self, sc);
  // A queued attempt begins when its kind says so (started_atom).
  st.waiting_for_slot = kind->queues_attempts();
  if (!st.waiting_for_slot)
    publish_now(self, make_event(self, "stage.started"));
  st.running = self->spawn(stage_actor, caf::actor_cast<caf::actor>(self),
                           st.seq, kind, std::move(req));
  self->monitor(st.running);
  if (!st.waiting_for_slot)
    arm_timeout(self);
}

void finish_cancelled(self_ptr self) {
  auto& st = self->state;
  if (st.finishing)
    return;
  st.finishing = true;
  ++st.seq; // drops pending retry and timeout timers
  if (st.running) {
    self->demonitor(st.running);
    // Killing the stage actor runs its cleanup (e.g. kills an exec child).
    self->send_exit(st.running, caf::exit_reason::kill);
    st.running = nullptr;
  }
  auto w = make_write(self, job_state::cancelled);
  w.last_error = "cancelled";
  commit(self, std::move(w), {make_event(self, "job.cancelled")}, [self] {
    job_result res;
    res.state = job_state::cancelled;
    report(self, std::move(res));
  });
}

void on_claimed(self_ptr self, job_snapshot& snap) {
  auto& st = self->state;
  if (is_terminal(snap.state)) {
    job_result res;
    res.state = snap.state;
    res.already_terminal = true;
    report(self, std::move(res));
    return;
  }
  st.claimed = true;
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
  if (st.cancel_requested) {
    finish_cancelled(self);
    return;
  }
  if (!st.spec.resumed)
    publish_now(self, make_event(self, "job.started"));
  if (st.stage == static_cast<std::int32_t>(n)) {
    // Every stage has a checkpoint: the previous run died between the last
    // checkpoint and the terminal write.
    st.finishing = true;
    auto w = make_write(self, job_state::succeeded);
    w.stage_index = static_cast<std::int32_t>(n) - 1;
    w.result = n > 0 ? st.outputs.back() : "null";
    commit(self, std::move(w), {make_event(self, "job.succeeded")}, [self] {
      job_result res;
      res.state = job_state::succeeded;
      report(self, std::move(res));
    });
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
  const auto& policy = st.pipe->config.stages[st.stage].retry;
  if (failed >= policy.max_attempts) {
    st.finishing = true;
    auto w = make_write(self, job_state::dead_lettered);
    w.last_error = last_error;
    auto dead = make_event(self, "job.dead_lettered");
    dead.error = last_error;
    auto stage = st.stage;
    commit(self, std::move(w), {std::move(dead)}, [self, stage, last_error] {
      job_result res;
      res.state = job_state::dead_lettered;
      res.failed_stage = stage;
      res.error = last_error;
      report(self, std::move(res));
    });
    return;
  }
  run_stage(self);
}

void record_invalid(self_ptr self) {
  auto& st = self->state;
  // Undecodable input is created dead-lettered, never claimed: a create
  // cannot touch a job that exists (job_exists: see on_job_exists), so junk
  // published with a live job's id does not dead-letter that job.
  st.finishing = true;
  st.claimed = true;
  st.epoch = 1;
  auto code = st.spec.invalid_code.empty() ? std::string{"invalid_payload"}
                                           : st.spec.invalid_code;
  auto w = make_write(self, job_state::dead_lettered);
  w.create = true;
  w.spec = st.spec;
  w.started_at_ms = now_ms(self);
  commit_dead_letter(self, std::move(w), code, st.spec.invalid_reason);
}

void claim(self_ptr self) {
  auto& st = self->state;
  st.claimed = false;
  self->request(st.deps->store, caf::infinite, claim_atom::value, st.spec)
      .then([self](job_snapshot& snap) { on_claimed(self, snap); },
            [self](caf::error& err) {
              if (code_of(err) == errc::conflict ||
                  code_of(err) == errc::unstorable) {
                // The delivery itself is wrong; the job (if any) is left
                // alone and the message is dropped, not retried.
                job_result res;
                res.conflict = code_of(err) == errc::conflict;
                res.unrecordable = !res.conflict;
                res.error = describe(err);
                report(self, std::move(res));
                return;
              }
              // Could not take the job (store down, or fenced): report without
              // acking so that the broker redelivers it later.
              abandon(self, err);
            });
}

std::string describe_exit(const caf::error& reason) {
  if (reason == caf::exit_reason::kill)
    return "stage actor was killed";
  return describe(reason);
}

job_brief brief(self_ptr self) {
  auto& st = self->state;
  job_brief b;
  b.job_id = st.spec.job_id;
  b.pipeline = st.spec.pipeline;
  b.stage_index = st.stage;
  if (st.stage >= 0 &&
      st.stage < static_cast<std::int32_t>(st.pipe->config.stages.size()))
    b.stage = st.pipe->config.stages[st.stage].name;
  b.attempt = st.attempt;
  b.life = st.life;
  b.job_actor = self->id();
  b.stage_actor = st.running ? st.running.id() : 0;
  auto now = now_ms(self);
  if (st.finishing)
    b.state = "finishing";
  else if (!st.claimed && !st.speculating)
    b.state = "claiming";
  else if (st.running) {
    b.state = st.waiting_for_slot ? "waiting_for_slot" : "running";
    b.for_ms = now - st.attempt_started_ms;
  } else if (st.waiting_since_ms > 0) {
    b.state = "retrying";
    b.for_ms = now - st.waiting_since_ms;
  } else {
    b.state = "committing"; // between a checkpoint and the next stage
  }
  return b;
}

caf::behavior job_actor(self_ptr self, job_spec spec,
                        std::shared_ptr<const pipeline_def> pipe,
                        std::shared_ptr<const job_deps> deps,
                        caf::actor parent) {
  auto& st = self->state;
  st.spec = std::move(spec);
  st.delivered_id = st.spec.job_id;
  st.pipe = std::move(pipe);
  st.deps = std::move(deps);
  st.parent = std::move(parent);
  st.rng.seed(st.deps->seed ^ std::hash<std::string>{}(st.spec.job_id));
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    if (!st.running || dm.source != st.running.address())
      return;
    st.running = nullptr;
    st.attempt_ended = self->clock().now();
    if (st.finishing)
      return;
    on_failure(self, "crashed", describe_exit(dm.reason), true);
  });
  auto window = st.pipe->config.speculate.value_or(st.deps->speculate);
  if (st.spec.fresh && window.count() > 0 && st.spec.invalid_reason.empty() &&
      !st.pipe->config.stages.empty()) {
    st.speculating = true;
    st.speculation_started_ms = now_ms(self);
    st.outputs.assign(st.pipe->config.stages.size(), std::string{});
    publish_now(self, make_event(self, "job.started"));
    self->delayed_send(self, window, speculate_atom::value);
    run_stage(self);
  } else if (!st.spec.invalid_reason.empty()) {
    record_invalid(self);
  } else {
    claim(self);
  }
  return {
      [self](std::int64_t seq, stage_outcome& out) {
        auto& st = self->state;
        if (seq != st.seq || !st.running || st.finishing)
          return; // a late outcome of an abandoned attempt
        self->demonitor(st.running);
        st.running = nullptr;
        st.attempt_ended = self->clock().now();
        if (out.ok && json_has_nul(out.output))
          // PostgreSQL cannot store U+0000: a checkpoint with it would fail
          // every write. The stage's output is wrong, not the store.
          on_failure(self, "invalid_output",
                     "stage output contains a NUL character (\\u0000), "
                     "which cannot be stored",
                     false);
        else if (out.ok)
          on_success(self, std::move(out.output));
        else
          on_failure(self, std::move(out.error_code),
                     std::move(out.error_message), out.retryable);
      },
      [self](started_atom, std::int64_t seq) {
        auto& st = self->state;
        if (seq != st.seq || !st.running || st.finishing ||
            !st.waiting_for_slot)
          return;
        begin_attempt(self);
      },
      [self](retry_atom, std::int64_t seq) {
        auto& st = self->state;
        if (seq != st.seq || st.finishing || st.running)
          return;
        run_stage(self);
      },
      [self](timeout_atom, std::int64_t seq) {
        auto& st = self->state;
        if (seq != st.seq || !st.running || st.finishing)
          return;
        self->demonitor(st.running);
        self->send_exit(st.running, caf::exit_reason::kill);
        st.running = nullptr;
        st.attempt_ended = self->clock().now();
        const auto& sc = st.pipe->config.stages[st.stage];
        on_failure(self, "timeout",
                   "attempt exceeded its timeout of " +
                       format_duration(sc.timeout),
                   true);
      },
      [self](cancel_atom) {
        auto& st = self->state;
        st.cancel_requested = true;
        end_speculation(self); // if speculating, the cancel write creates it
        // Before the claim the cancel is acted on once the claim completes;
        // a write under way is committed first (writes are ordered).
        if (!st.claimed || st.finishing)
          return;
        finish_cancelled(self);
      },
      [self](rewrite_atom) { pump_writes(self); },
      [self](speculate_atom) {
        auto& st = self->state;
        if (!st.speculating)
          return;
        // Still running: write the job (running, with what completed) so
        // that it is visible and leased like any other.
        end_speculation(self);
        commit(self, make_write(self, job_state::running), {});
      },
      [self](tree_atom) { return brief(self); },
      [self](now_atom) {
        auto& st = self->state;
        // Only a job that waits for a retry can skip its wait; the pending
        // timer is dropped by the sequence check once the attempt starts.
        bool waiting = st.claimed && !st.running && !st.finishing &&
                       st.waiting_since_ms > 0;
        if (waiting)
          self->send(self, retry_atom::value, st.seq);
        return waiting;
      },
  };
}

} // namespace job_detail

caf::actor spawn_job_actor(caf::actor_system& sys, job_spec spec,
                           std::shared_ptr<const pipeline_def> pipe,
                           std::shared_ptr<const job_deps> deps,
                           caf::actor parent) {
  return sys.spawn(job_detail::job_actor, std::move(spec), std::move(pipe),
                   std::move(deps), std::move(parent));
}

} // namespace troupe
