#include "actors/pipeline_supervisor_internal.hpp"

#include <algorithm>
#include <functional>

#include "actors/atoms.hpp"

// Parked jobs: a job waiting for a long retry has no actor, only a small
// record and a place in one timer's heap (job_outcome::parked).

namespace troupe::supervisor_detail {

/// The job's actor quit to wait for its retry: keep the delivery, drop the
/// payload (the store has it) and set a timer.
void park(self_ptr self, const job_result& res) {
  auto& st = self->state;
  auto i = st.running.find(res.job_id);
  if (i == st.running.end())
    return;
  auto& e = i->second;
  self->demonitor(e.actor);
  st.by_actor.erase(e.actor.address());
  if (e.cancel) {
    // A cancel crossed the park (sent to the actor as it quit): start the
    // job again at once so that its new actor records the cancel.
    auto entry = std::move(e);
    st.running.erase(i);
    entry.spec.resumed = true;
    start_job(self, std::move(entry));
    return;
  }
  parked_job p{&st.pool};
  p.tenant = e.spec.tenant;
  p.correlation_id = e.spec.correlation_id;
  p.priority = e.spec.priority;
  p.submitted_at_ms = e.spec.submitted_at_ms;
  p.delivery = e.delivery;
  p.restarts = e.restarts;
  p.gated = e.gated;
  p.seq = ++st.next_park_seq;
  p.stage = res.failed_stage;
  p.attempt = res.attempt;
  p.life = res.life;
  p.since_ms = st.deps.job->now_ms();
  p.stream_seq = e.spec.stream_seq;
  p.gen = e.spec.gen;
  st.running.erase(i);
  auto due = self->clock().now() + std::chrono::milliseconds{res.park_ms};
  st.wake_ups.push_back({due, p.seq, std::pmr::string{res.job_id, &st.pool}});
  std::push_heap(st.wake_ups.begin(), st.wake_ups.end(), std::greater<>{});
  st.parked.emplace(std::pmr::string{res.job_id, &st.pool}, std::move(p));
  if (due < st.next_tick) {
    st.next_tick = due;
    self->delayed_send(self, due - self->clock().now(), wake_atom::value,
                       due.time_since_epoch().count());
  }
}

/// Starts a parked job again: its new actor claims it and runs the retry.
void wake(self_ptr self, decltype(supervisor_state::parked)::iterator i,
          bool cancel) {
  auto& p = i->second;
  job_entry e;
  e.spec.job_id = std::string{i->first};
  e.spec.pipeline = self->state.pipe->config.name;
  e.spec.tenant = std::string{p.tenant};
  e.spec.correlation_id = std::string{p.correlation_id};
  e.spec.priority = p.priority;
  e.spec.submitted_at_ms = p.submitted_at_ms;
  e.spec.payload.clear();
  e.spec.resumed = true;
  e.spec.stream_seq = p.stream_seq;
  e.spec.gen = p.gen;
  e.delivery = i->second.delivery;
  e.restarts = i->second.restarts;
  e.gated = i->second.gated;
  e.cancel = cancel;
  self->state.parked.erase(i);
  start_job(self, std::move(e));
}

/// Wakes the parked jobs that are due and schedules the next tick.
void wake_due(self_ptr self) {
  auto& st = self->state;
  auto now = self->clock().now();
  st.next_tick = clock_type::time_point::max();
  while (!st.wake_ups.empty() && st.wake_ups.front().due <= now) {
    std::pop_heap(st.wake_ups.begin(), st.wake_ups.end(), std::greater<>{});
    auto w = std::move(st.wake_ups.back());
    st.wake_ups.pop_back();
    // Woken earlier (retry now, cancel) and maybe parked again since: the
    // sequence number tells.
    auto i = st.parked.find(w.job_id);
    if (i != st.parked.end() && i->second.seq == w.seq)
      wake(self, i);
  }
  if (st.wake_ups.empty())
    std::pmr::vector<wake_up>{&st.pool}.swap(st.wake_ups);
  else {
    st.next_tick = st.wake_ups.front().due;
    self->delayed_send(self, st.next_tick - now, wake_atom::value,
                       st.next_tick.time_since_epoch().count());
  }
}

} // namespace troupe::supervisor_detail
