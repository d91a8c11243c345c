#include "actors/job_actor_internal.hpp"

#include "actors/atoms.hpp"

// Speculation (job_deps::speculate): a fresh delivery runs before anything
// about it is written; see the protocol notes in actors/job_actor.hpp.

namespace troupe::job_detail {

void end_speculation(self_ptr self) {
  auto& st = self->state;
  if (!st.speculation.holding())
    return;
  // From here on the job behaves as if it had claimed at epoch 1; its next
  // write creates the row instead (make_create), and if the row turns out to
  // exist, on_job_exists undoes this.
  st.epoch = 1;
  st.speculation.state = speculation_buffer::mode::create_pending;
}

bool retry_fits_window(self_ptr self, duration_ms delay) {
  auto& st = self->state;
  if (!st.speculation.holding())
    return false;
  auto window = st.pipe->config.speculate.value_or(st.deps->speculate);
  return now_ms(self) + delay.count() <
         st.speculation.started_ms + window.count();
}

void make_create(self_ptr self, job_write& w, std::vector<job_event>& publish) {
  auto& held = self->state.speculation;
  held.state = speculation_buffer::mode::create_unconfirmed;
  w.create = true;
  w.spec = self->state.spec;
  w.epoch = 1;
  w.started_at_ms = held.started_ms;
  if (w.last_error.empty()) // a held retry's error, as an update keeps it
    w.last_error = std::move(held.last_error);
  held.last_error.clear();
  w.checkpoints.insert(w.checkpoints.begin(),
                       std::make_move_iterator(held.checkpoints.begin()),
                       std::make_move_iterator(held.checkpoints.end()));
  w.attempts.insert(w.attempts.begin(),
                    std::make_move_iterator(held.attempts.begin()),
                    std::make_move_iterator(held.attempts.end()));
  publish.insert(publish.begin(), std::make_move_iterator(held.events.begin()),
                 std::make_move_iterator(held.events.end()));
  std::vector<checkpoint>{}.swap(held.checkpoints);
  std::vector<attempt_record>{}.swap(held.attempts);
  std::vector<job_event>{}.swap(held.events);
  // The latest report made before the job existed goes with its creation.
  auto& unstored = self->state.reports.unstored;
  if (w.progress.empty())
    w.progress = std::move(unstored);
  unstored.clear();
}

/// Undecodable input named an id that exists: it is recorded under an id
/// of its own instead (what it named stays in its payload), once; a second
/// job_exists means this very message was recorded already.
void on_invalid_exists(self_ptr self) {
  auto& st = self->state;
  st.writer.drop_queued();
  auto own = "invalid-" + std::to_string(st.spec.stream_seq) + "-" +
             std::to_string(st.spec.submitted_at_ms);
  if (st.spec.job_id == own) {
    job_result res;
    res.outcome = job_outcome::already_terminal;
    report(self, std::move(res));
    return;
  }
  st.spec.job_id = own;
  record_invalid(self);
}

void on_job_exists(self_ptr self) {
  auto& st = self->state;
  if (!st.spec.invalid_reason.empty()) {
    on_invalid_exists(self);
    return;
  }
  if (st.scheduling) {
    // A key published again with a time: the job it names stays as it is.
    st.writer.drop_queued();
    st.cancel_requested = false; // the cancel is for that job, not ours
    report_waiting_in_store(self);
    return;
  }
  // Re-submitted, replayed or tombstoned: the store's state wins. What ran
  // here is dropped unannounced (its events were waiting for the create).
  st.writer.drop_queued();
  ++st.seq; // outcomes and timers of what ran here are ignored
  stop_attempt(self);
  st.speculation.drop();
  if (st.waiting_since_ms > 0)
    self->send(st.parent, waiting_atom::value, st.spec.job_id, false);
  st.waiting_since_ms = 0;
  claim(self);
}

} // namespace troupe::job_detail
