#include "actors/job_actor_internal.hpp"

#include "actors/atoms.hpp"

// Speculation (job_deps::speculate): a fresh delivery runs before it claims
// the job; see the protocol notes in actors/job_actor.hpp.

namespace troupe::job_detail {

/// The last stage succeeded within the window: create the job with its
/// whole run in one commit.
void finish_speculation(self_ptr self, std::string output) {
  auto& st = self->state;
  st.speculating = false;
  st.finishing = true;
  auto w = make_write(self, job_state::succeeded);
  w.create = true;
  w.spec = st.spec;
  w.started_at_ms = st.held_attempts.empty()
                        ? now_ms(self)
                        : st.held_attempts.front().started_at_ms;
  w.checkpoints = std::move(st.held_checkpoints);
  w.attempts = std::move(st.held_attempts);
  w.result = std::move(output);
  auto events = std::move(st.held_events);
  events.push_back(make_event(self, "job.succeeded"));
  commit(self, std::move(w), std::move(events), [self] {
    job_result res;
    res.state = job_state::succeeded;
    report(self, std::move(res));
  });
}

/// Drops what ran before a claim that found the job already there.
void drop_speculation(self_ptr self) {
  auto& st = self->state;
  st.speculating = false;
  ++st.seq; // outcomes and timers of the dropped attempt are ignored
  if (st.running) {
    self->demonitor(st.running);
    self->send_exit(st.running, caf::exit_reason::kill);
    st.running = nullptr;
  }
  st.held_checkpoints.clear();
  st.held_attempts.clear();
  st.held_events.clear();
  st.after_claim.clear();
}

void on_speculation_claimed(self_ptr self, job_snapshot& snap) {
  auto& st = self->state;
  if (!snap.created) {
    // Redelivered, replayed or re-submitted: the store's state wins.
    drop_speculation(self);
    on_claimed(self, snap);
    return;
  }
  st.speculating = false;
  st.claimed = true;
  st.epoch = snap.epoch;
  st.life = snap.life;
  // What ran before the claim is committed first; writes are ordered, so
  // everything after builds on it.
  auto w = make_write(self, job_state::running);
  w.checkpoints = std::move(st.held_checkpoints);
  w.attempts = std::move(st.held_attempts);
  commit(self, std::move(w), std::move(st.held_events));
  auto deferred = std::move(st.after_claim);
  st.after_claim.clear();
  if (st.cancel_requested) {
    finish_cancelled(self);
    return;
  }
  for (auto& f : deferred)
    f();
}

/// The window ended, a stage failed or a cancel came: claim the job now.
void end_speculation(self_ptr self) {
  auto& st = self->state;
  if (!st.speculating || st.claim_sent)
    return;
  st.claim_sent = true;
  self->request(st.deps->store, caf::infinite, claim_atom::value, st.spec)
      .then([self](job_snapshot& snap) { on_speculation_claimed(self, snap); },
            [self](caf::error& err) { abandon(self, err); });
}

} // namespace troupe::job_detail
