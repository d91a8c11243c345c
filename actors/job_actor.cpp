#include "actors/job_actor.hpp"

#include <cstdio>
#include <string>

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/job_actor_internal.hpp"
#include "config/config_loader.hpp"
#include "messages/errc.hpp"
#include "messages/json_guard.hpp"
#include "messages/stats.hpp"

// The job actor's behavior, its phase changes and how it finishes; the
// claim, the attempts, the writes and the speculation have files of their
// own (job_actor_internal.hpp).

namespace troupe {

namespace job_detail {

void enter_phase(self_ptr self, job_phase next) {
  auto& st = self->state;
  if (!may_enter(st.phase, next)) {
    // A bug, not an input error: say so, and go on as asked (refusing would
    // strand the job; the actor tests check that this never happens).
    count_refused_phase_transition();
    std::fprintf(stderr, "job_actor %s: refused phase change %s -> %s\n",
                 st.spec.job_id.c_str(), to_string(st.phase).data(),
                 to_string(next).data());
  }
  st.phase = next;
}

void stop_attempt(self_ptr self) {
  auto& st = self->state;
  stop_branches(self);
  if (!st.running)
    return;
  self->demonitor(st.running);
  // Killing the stage actor runs its cleanup (e.g. kills an exec child).
  self->send_exit(st.running, caf::exit_reason::kill);
  st.running = nullptr;
}

void finish_with(self_ptr self, job_write w, std::vector<job_event> publish,
                 std::int32_t failed_stage) {
  enter_phase(self, job_phase::finishing);
  job_result res;
  res.outcome = job_outcome::finished;
  res.state = w.state;
  res.failed_stage = failed_stage;
  if (w.state == job_state::dead_lettered)
    res.error = w.last_error;
  commit(
      self, std::move(w), std::move(publish),
      [self, res = std::move(res)]() mutable { report(self, std::move(res)); });
}

namespace {

std::string describe_exit(const caf::error& reason) {
  if (reason == caf::exit_reason::kill)
    return "stage actor was killed";
  return describe(reason);
}

/// What the job is doing, for `tree`.
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
  b.branches = brief_branches(self);
  auto now = now_ms(self);
  switch (st.phase) {
  case job_phase::starting:
  case job_phase::claiming:
    b.state = "claiming";
    break;
  case job_phase::waiting_for_slot:
  case job_phase::running:
    b.state = std::string{to_string(st.phase)};
    b.for_ms = now - st.attempt_started_ms;
    break;
  case job_phase::backing_off:
    b.state = "retrying";
    b.for_ms = now - st.waiting_since_ms;
    break;
  case job_phase::committing:
    b.state = "committing"; // between a checkpoint and the next stage
    break;
  case job_phase::handing_to_store:
    b.state = "waiting"; // a callback stage's wait commits
    break;
  case job_phase::finishing:
  case job_phase::done:
    b.state = "finishing";
    break;
  }
  return b;
}

/// The running attempt's stage actor reported.
void on_outcome(self_ptr self, std::int64_t seq, stage_outcome& out) {
  auto& st = self->state;
  if (st.pipe->graph.parallel) {
    on_branch_outcome(self, seq, out);
    return;
  }
  if (seq != st.seq || !attempt_alive(st.phase))
    return; // a late outcome of an abandoned attempt
  self->demonitor(st.running);
  st.running = nullptr;
  st.attempt_ended = self->clock().now();
  if (!out.await_token.empty())
    wait_for_callback(self, out);
  else if (out.ok && json_has_nul(out.output))
    // PostgreSQL cannot store U+0000: a checkpoint with it would fail
    // every write. The stage's output is wrong, not the store.
    on_failure(self, "invalid_output",
               "stage output contains a NUL character (\\u0000), "
               "which cannot be stored",
               false);
  else if (spawns(self, out))
    spawn_children(self, std::move(out.output));
  else if (out.ok)
    on_success(self, std::move(out.output));
  else
    on_failure(self, std::move(out.error_code), std::move(out.error_message),
               out.retryable);
}

/// The running attempt exceeded its stage's timeout.
void on_timeout(self_ptr self, std::int64_t seq) {
  auto& st = self->state;
  if (st.pipe->graph.parallel) {
    on_branch_timeout(self, seq);
    return;
  }
  if (seq != st.seq || st.phase != job_phase::running)
    return;
  stop_attempt(self);
  st.attempt_ended = self->clock().now();
  const auto& sc = st.pipe->config.stages[st.stage];
  on_failure(self, "timeout",
             "attempt exceeded its timeout of " + format_duration(sc.timeout),
             true);
}

void on_cancel(self_ptr self) {
  auto& st = self->state;
  st.cancel_requested = true;
  end_speculation(self); // if speculating, the cancel write creates it
  // Before the claim the cancel is acted on once the claim completes;
  // a write under way is committed first (writes are ordered).
  if (st.phase == job_phase::claiming || st.phase == job_phase::finishing)
    return;
  finish_cancelled(self);
}

/// Starts the job: hand it to the store (due later), speculate (fresh
/// delivery), record invalid input, or claim.
void start(self_ptr self) {
  auto& st = self->state;
  auto window = st.pipe->config.speculate.value_or(st.deps->speculate);
  if (st.spec.run_at_ms > now_ms(self) && st.spec.invalid_reason.empty()) {
    schedule_in_store(self);
  } else if (st.spec.fresh && window.count() > 0 && !st.pipe->graph.parallel &&
             st.spec.invalid_reason.empty() &&
             !st.pipe->config.stages.empty()) {
    st.speculation.state = speculation_buffer::mode::holding;
    st.speculation.started_ms = now_ms(self);
    st.outputs.assign(st.pipe->config.stages.size(), std::string{});
    // A job done in its window holds two events per stage and two of its
    // own, a checkpoint and an attempt per stage: sized once, not grown.
    auto stages = st.pipe->config.stages.size();
    st.speculation.events.reserve(2 * stages + 2);
    st.speculation.checkpoints.reserve(stages);
    st.speculation.attempts.reserve(stages);
    publish_now(self, make_event(self, event_type::job_started));
    // The supervisor says when the window ends (pipeline_speculation.cpp).
    run_stage(self);
  } else if (!st.spec.invalid_reason.empty()) {
    record_invalid(self);
  } else {
    claim(self);
  }
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
    if (st.pipe->graph.parallel) {
      on_branch_down(self, dm.source, describe_exit(dm.reason));
      return;
    }
    if (!st.running || dm.source != st.running.address())
      return;
    st.running = nullptr;
    st.attempt_ended = self->clock().now();
    if (st.phase == job_phase::finishing)
      return;
    on_failure(self, "crashed", describe_exit(dm.reason), true);
  });
  start(self);
  return {
      [self](std::int64_t seq, stage_outcome& out) {
        on_outcome(self, seq, out);
      },
      [self](started_atom, std::int64_t seq) {
        if (self->state.pipe->graph.parallel)
          on_branch_started(self, seq);
        else if (seq == self->state.seq &&
                 self->state.phase == job_phase::waiting_for_slot)
          begin_attempt(self);
      },
      [self](retry_atom, std::int64_t seq) {
        if (self->state.pipe->graph.parallel)
          on_branch_retry(self, seq);
        else if (seq == self->state.seq &&
                 self->state.phase == job_phase::backing_off)
          run_stage(self);
      },
      [self](timeout_atom, std::int64_t seq) { on_timeout(self, seq); },
      [self](progress_atom, std::int64_t seq, std::string& report) {
        // Parallel stages share the job's one progress record: their
        // reports are not kept (docs/workflows.md).
        if (!self->state.pipe->graph.parallel)
          on_report(self, seq, report);
      },
      [self](beat_atom, std::int64_t seq) { check_heartbeat(self, seq); },
      [self](beat_atom, std::int64_t seq, bool) { flush_reports(self, seq); },
      [self](cancel_atom) { on_cancel(self); },
      [self](rewrite_atom) { pump_writes(self); },
      [self](speculate_atom) {
        if (!self->state.speculation.holding())
          return;
        // Still running: write the job (running, with what completed) so
        // that it is visible and leased like any other.
        end_speculation(self);
        commit(self, make_write(self, job_state::running), {});
      },
      [self](tree_atom) { return brief(self); },
      [self](now_atom) {
        // Only a job that waits for a retry can skip its wait; the pending
        // timer is dropped by the sequence check once the attempt starts.
        if (self->state.pipe->graph.parallel)
          return retry_branches_now(self);
        bool waiting = self->state.phase == job_phase::backing_off;
        if (waiting)
          self->send(self, retry_atom::value, self->state.seq);
        return waiting;
      },
  };
}

} // namespace

} // namespace job_detail

caf::actor spawn_job_actor(caf::actor_system& sys, job_spec spec,
                           std::shared_ptr<const pipeline_def> pipe,
                           std::shared_ptr<const job_deps> deps,
                           caf::actor parent) {
  return sys.spawn(job_detail::job_actor, std::move(spec), std::move(pipe),
                   std::move(deps), std::move(parent));
}

} // namespace troupe
