#include "actors/job_actor_internal.hpp"

#include <nlohmann/json.hpp>

// Callback stages (actors/callback_stage.hpp) seen from the job: the wait
// is a committed `waiting` state in the store, not an actor, a thread or a
// held delivery; the scheduler publishes the job again when an outside
// system completes the stage or its deadline passes.

namespace troupe::job_detail {

void wait_for_callback(self_ptr self, stage_outcome& out) {
  auto& st = self->state;
  end_speculation(self); // if speculating, the write below creates the job
  ++st.seq;              // drops the attempt's timeout and heartbeat timers
  enter_phase(self, job_phase::handing_to_store);
  auto wait = duration_ms{std::max<std::int64_t>(out.await_ms, 1)};
  auto w = make_write(self, job_state::waiting);
  w.wait_in_store = true;
  set_wait(self, w, wait);
  auto deadline = w.next_attempt_at_ms;
  w.callback_token = std::move(out.await_token);
  w.callback_since_ms = st.attempt_started_ms;
  auto ev = make_event(self, event_type::job_waiting);
  ev.deadline_ms = deadline;
  ev.notify_subject = std::move(out.await_subject);
  ev.notify_body = std::move(out.output);
  // The request goes out with the event, after the commit: an outside
  // system cannot complete a wait that is not in the store yet.
  auto seq = st.seq;
  commit(self, std::move(w), {std::move(ev)}, [self, seq] {
    if (seq == self->state.seq &&
        self->state.phase == job_phase::handing_to_store)
      report_waiting_in_store(self);
  });
}

void resume_callback(self_ptr self, stage_request& req) {
  auto& st = self->state;
  if (st.callback.empty())
    return;
  req.callback = std::move(st.callback);
  st.callback.clear();
  auto rec = nlohmann::json::parse(req.callback, nullptr, false);
  // From the store: read without trusting its types (value() would throw).
  auto num = [&](const char* key) -> std::int64_t {
    auto i = rec.is_object() ? rec.find(key) : rec.end();
    return rec.is_object() && i != rec.end() && i->is_number_integer()
               ? i->get<std::int64_t>()
               : -1;
  };
  if (num("stage_index") != st.stage || num("life") != st.life ||
      num("attempt") != st.attempt)
    return;
  // The attempt began when its wait did: its duration is the wait.
  auto since = num("since_ms");
  auto now = now_ms(self);
  if (since > 0 && since <= now) {
    st.attempt_started_ms = since;
    st.attempt_started =
        self->clock().now() - std::chrono::milliseconds{now - since};
  }
}

} // namespace troupe::job_detail
