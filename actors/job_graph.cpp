#include "actors/job_actor_internal.hpp"

#include <algorithm>

#include "actors/atoms.hpp"
#include "actors/stage_actor.hpp"
#include "config/config_loader.hpp"
#include "messages/json_guard.hpp"
#include "messages/json_text.hpp"

// Pipelines whose stages run in parallel (config/stage_graph.hpp): every
// stage whose inputs are ready runs at once as a sibling stage actor (a
// branch), with its own attempts, timeout and retry wait. Each branch's
// checkpoint commits before the stages that need it start, so a job
// resumed elsewhere runs only the stages without one. The job's writes
// still commit one at a time, in order (job_writes.cpp).

namespace troupe::job_detail {

namespace {

using mode = branch::mode;

branch* find_branch(self_ptr self, std::int64_t seq) {
  for (auto& b : self->state.branches)
    if (b.seq == seq)
      return &b;
  return nullptr;
}

/// Points the job's "current attempt" at branch `b`, so that events,
/// writes, attempt records and requests (which read it) describe `b`.
void focus(self_ptr self, const branch& b) {
  auto& st = self->state;
  st.stage = b.stage;
  st.attempt = b.attempt;
  st.attempt_started = b.started;
  st.attempt_ended = b.ended;
  st.attempt_started_ms = b.started_ms;
}

void forget(self_ptr self, std::int64_t seq) {
  auto& v = self->state.branches;
  v.erase(std::remove_if(v.begin(), v.end(),
                         [seq](const branch& b) { return b.seq == seq; }),
          v.end());
}

std::vector<bool> done_stages(self_ptr self) {
  std::vector<bool> done;
  for (const auto& out : self->state.outputs)
    done.push_back(!out.empty());
  return done;
}

void arm_timeout(self_ptr self, const branch& b) {
  const auto& sc = self->state.pipe->config.stages[b.stage];
  if (sc.timeout.count() > 0)
    self->delayed_send(self, sc.timeout, timeout_atom::value, b.seq);
}

/// Starts branch `seq`'s next attempt.
void run_branch(self_ptr self, std::int64_t seq) {
  auto& st = self->state;
  auto* b = find_branch(self, seq);
  const auto& sc = st.pipe->config.stages[b->stage];
  const auto& kind = st.pipe->kinds[b->stage];
  ++b->attempt;
  b->seq = ++st.seq;
  b->started = self->clock().now();
  b->started_ms = now_ms(self);
  b->waiting_since_ms = 0;
  focus(self, *b);
  if (b->attempt > 1) // leaving `retrying`: the job runs again
    commit(self, make_write(self, job_state::running), {});
  bool queued = kind->queues_attempts();
  b->now = queued ? mode::waiting_for_slot : mode::running;
  if (!queued)
    publish_now(self, make_event(self, event_type::stage_started));
  b->running = self->spawn(stage_actor, caf::actor_cast<caf::actor>(self),
                           b->seq, kind, make_request(self, sc));
  self->monitor(b->running);
  if (!queued)
    arm_timeout(self, *b);
}

void start_branch(self_ptr self, std::int32_t stage, std::int32_t failed) {
  branch b;
  b.stage = stage;
  b.attempt = failed;
  b.seq = ++self->state.seq;
  self->state.branches.push_back(std::move(b));
  run_branch(self, self->state.branches.back().seq);
}

/// Every stage has run: the job's result is the last stage's output.
void finish_graph(self_ptr self) {
  auto& st = self->state;
  st.stage = static_cast<std::int32_t>(st.outputs.size()) - 1;
  auto w = make_write(self, job_state::succeeded);
  w.result = st.outputs.empty() ? "null" : st.outputs.back();
  auto done = succeeded_event(self, w.result);
  finish_with(self, std::move(w), {std::move(done)});
}

/// Starts the stages that became ready, or finishes the job.
void advance(self_ptr self) {
  auto& st = self->state;
  auto done = done_stages(self);
  for (auto s : st.pipe->graph.ready(done)) {
    bool running = std::any_of(st.branches.begin(), st.branches.end(),
                               [s](const branch& b) { return b.stage == s; });
    if (!running)
      start_branch(self, s, 0);
  }
  if (st.branches.empty())
    finish_graph(self);
}

void on_committed(self_ptr self, std::int64_t seq) {
  auto& st = self->state;
  auto* b = find_branch(self, seq);
  if (!b || st.phase != job_phase::running)
    return; // cancelled, dead-lettered or fenced meanwhile
  st.outputs[b->stage] = std::move(b->output);
  forget(self, seq);
  advance(self);
}

checkpoint make_checkpoint(self_ptr self, const branch& b,
                           const attempt_record& rec) {
  checkpoint cp;
  cp.stage_index = b.stage;
  cp.stage = self->state.pipe->config.stages[b.stage].name;
  cp.output = b.output;
  cp.attempts = b.attempt;
  cp.duration_ms = rec.duration_ms;
  cp.finished_at_ms = now_ms(self);
  return cp;
}

void branch_succeeded(self_ptr self, branch& b, std::string output) {
  auto& st = self->state;
  focus(self, b);
  auto rec = finished_attempt(self, true);
  b.output = std::move(output);
  auto cp = make_checkpoint(self, b, rec);
  auto succeeded = make_event(self, event_type::stage_succeeded);
  if (b.stage + 1 == static_cast<std::int32_t>(st.outputs.size())) {
    // The last stage comes after every other (check_stage_graph): its
    // checkpoint and the job's end are one write.
    st.outputs[b.stage] = b.output;
    auto w = make_write(self, job_state::succeeded);
    w.checkpoints.push_back(std::move(cp));
    w.attempts.push_back(std::move(rec));
    w.result = b.output;
    auto done = succeeded_event(self, w.result);
    stop_branches(self);
    finish_with(self, std::move(w), {std::move(succeeded), std::move(done)});
    return;
  }
  b.now = mode::committing;
  auto w = make_write(self, job_state::running);
  w.checkpoints.push_back(std::move(cp));
  w.attempts.push_back(std::move(rec));
  commit(self, std::move(w), {std::move(succeeded)},
         [self, seq = b.seq] { on_committed(self, seq); });
}

/// True if nothing but branch `b` is under way: its long wait may then
/// park the whole job in the store.
bool alone(self_ptr self, const branch& b) {
  return self->state.branches.size() == 1 && &self->state.branches[0] == &b;
}

void retry_branch(self_ptr self, branch& b, attempt_record rec,
                  job_event failed) {
  auto& st = self->state;
  const auto& sc = st.pipe->config.stages[b.stage];
  auto delay = retry_delay(sc.retry, b.attempt, st.rng);
  auto retrying = make_event(self, event_type::job_retrying);
  retrying.error_code = rec.error_code;
  retrying.error = rec.error_message;
  retrying.next_retry_ms = delay.count();
  auto w = make_write(self, job_state::retrying);
  set_wait(self, w, delay);
  w.last_error = rec.error_code + ": " + rec.error_message;
  w.attempts.push_back(std::move(rec));
  if (alone(self, b) && st.deps->store_after.count() > 0 &&
      delay >= st.deps->store_after) {
    // Resumed from the store, the job runs this stage again first.
    st.branches.clear();
    wait_in_store(self, std::move(w), std::move(failed), std::move(retrying));
    return;
  }
  b.now = mode::backing_off;
  b.waiting_since_ms = now_ms(self);
  self->delayed_send(self, delay, retry_atom::value, b.seq);
  commit(self, std::move(w), {std::move(failed), std::move(retrying)});
}

void branch_failed(self_ptr self, branch& b, std::string code,
                   std::string message, bool retryable) {
  auto& st = self->state;
  code = valid_text(code);
  message = valid_text(message);
  focus(self, b);
  auto rec = finished_attempt(self, false);
  rec.error_code = code;
  rec.error_message = message;
  auto failed = make_event(self, event_type::stage_failed);
  failed.error_code = code;
  failed.error = message;
  const auto& sc = st.pipe->config.stages[b.stage];
  if (decide_retry(sc.retry, b.attempt, code, retryable) ==
      retry_decision::retry) {
    retry_branch(self, b, std::move(rec), std::move(failed));
    return;
  }
  // One branch out of attempts ends the job: its siblings stop.
  stop_branches(self);
  dead_letter_attempt(self, std::move(rec), std::move(failed));
}

/// Attempts of stage `s` that failed in this life (from the store).
std::int32_t failed_attempts(self_ptr self, const job_snapshot& snap,
                             std::int32_t s, std::string& last_error) {
  std::int32_t failed = 0;
  for (const auto& a : snap.attempts)
    if (a.life == self->state.life && a.stage_index == s && !a.ok) {
      ++failed;
      last_error = a.error_code + ": " + a.error_message;
    }
  return failed;
}

const char* mode_name(mode m) {
  switch (m) {
  case mode::waiting_for_slot:
    return "waiting_for_slot";
  case mode::running:
    return "running";
  case mode::backing_off:
    return "retrying";
  case mode::committing:
    return "committing";
  }
  return "running";
}

} // namespace

void resume_graph(self_ptr self, const job_snapshot& snap) {
  auto& st = self->state;
  enter_phase(self, job_phase::running);
  auto ready = st.pipe->graph.ready(done_stages(self));
  std::vector<std::int32_t> failed;
  for (auto s : ready) {
    std::string last_error;
    failed.push_back(failed_attempts(self, snap, s, last_error));
    if (failed.back() < st.pipe->config.stages[s].retry.max_attempts)
      continue;
    st.stage = s;
    st.attempt = failed.back();
    auto w = make_write(self, job_state::dead_lettered);
    w.last_error = last_error;
    auto dead = make_event(self, event_type::job_dead_lettered);
    dead.error = last_error;
    finish_with(self, std::move(w), {std::move(dead)}, s);
    return;
  }
  for (std::size_t i = 0; i < ready.size(); ++i)
    start_branch(self, ready[i], failed[i]);
  if (ready.empty())
    finish_graph(self);
}

void on_branch_outcome(self_ptr self, std::int64_t seq, stage_outcome& out) {
  auto* b = find_branch(self, seq);
  if (!b || !b->running || self->state.phase != job_phase::running)
    return; // a late outcome of an abandoned attempt
  self->demonitor(b->running);
  b->running = nullptr;
  b->ended = self->clock().now();
  if (!out.await_token.empty())
    branch_failed(self, *b, "invalid_output",
                  "a stage that runs in parallel cannot wait in the store",
                  false);
  else if (out.ok && json_has_nul(out.output))
    branch_failed(self, *b, "invalid_output",
                  "stage output contains a NUL character (\\u0000), "
                  "which cannot be stored",
                  false);
  else if (out.ok)
    branch_succeeded(self, *b, std::move(out.output));
  else
    branch_failed(self, *b, std::move(out.error_code),
                  std::move(out.error_message), out.retryable);
}

void on_branch_started(self_ptr self, std::int64_t seq) {
  auto* b = find_branch(self, seq);
  if (!b || b->now != mode::waiting_for_slot)
    return;
  b->now = mode::running;
  b->started = self->clock().now();
  b->started_ms = now_ms(self);
  focus(self, *b);
  publish_now(self, make_event(self, event_type::stage_started));
  arm_timeout(self, *b);
}

void on_branch_retry(self_ptr self, std::int64_t seq) {
  auto* b = find_branch(self, seq);
  if (b && b->now == mode::backing_off &&
      self->state.phase == job_phase::running)
    run_branch(self, seq);
}

void on_branch_timeout(self_ptr self, std::int64_t seq) {
  auto* b = find_branch(self, seq);
  if (!b || b->now != mode::running || !b->running)
    return;
  self->demonitor(b->running);
  self->send_exit(b->running, caf::exit_reason::kill);
  b->running = nullptr;
  b->ended = self->clock().now();
  const auto& sc = self->state.pipe->config.stages[b->stage];
  branch_failed(
      self, *b, "timeout",
      "attempt exceeded its timeout of " + format_duration(sc.timeout), true);
}

void on_branch_down(self_ptr self, const caf::actor_addr& who,
                    std::string why) {
  for (auto& b : self->state.branches)
    if (b.running && b.running.address() == who) {
      b.running = nullptr;
      b.ended = self->clock().now();
      if (self->state.phase == job_phase::running)
        branch_failed(self, b, "crashed", std::move(why), true);
      return;
    }
}

void stop_branches(self_ptr self) {
  for (auto& b : self->state.branches)
    if (b.running) {
      self->demonitor(b.running);
      self->send_exit(b.running, caf::exit_reason::kill);
    }
  self->state.branches.clear();
}

bool retry_branches_now(self_ptr self) {
  bool any = false;
  for (auto& b : self->state.branches)
    if (b.now == mode::backing_off) {
      self->send(self, retry_atom::value, b.seq);
      any = true;
    }
  return any;
}

std::vector<stage_brief> brief_branches(self_ptr self) {
  auto& st = self->state;
  std::vector<stage_brief> out;
  auto now = now_ms(self);
  for (const auto& b : st.branches) {
    stage_brief x;
    x.stage = st.pipe->config.stages[b.stage].name;
    x.stage_index = b.stage;
    x.attempt = b.attempt;
    x.state = mode_name(b.now);
    x.stage_actor = b.running ? b.running.id() : 0;
    x.for_ms =
        now - (b.now == mode::backing_off ? b.waiting_since_ms : b.started_ms);
    out.push_back(std::move(x));
  }
  return out;
}

} // namespace troupe::job_detail
