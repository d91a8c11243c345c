// When the speculation windows of a supervisor's fresh jobs end
// (job_deps::speculate, actors/job_actor.hpp).
//
// A timer per job cost a fifth of the node's CPU per job in the durable
// throughput benchmark (112 against 89 µs, docs/benchmarks.md, session
// 19). Almost every window outlives its job, and CAF 0.17's clock holds a
// strong reference to the receiver of a delayed message: each finished job
// actor lived on for the window, and was probably destroyed on the clock's
// thread when the timer fired. (Short retries, whose actors are still
// alive when their timers fire, gained nothing from the same treatment;
// measured and not kept.) The supervisor keeps one queue
// instead: the jobs it started fresh, oldest first (every window of a
// pipeline is as long, so the queue is ordered by its end), and one timer
// for the oldest. A tick tells the jobs whose window ended and that still
// run; then it waits for the next end, but at least a quarter of a window,
// so that a stream of jobs costs at most four ticks per window and a
// window ends at most a quarter late.

#include "actors/pipeline_supervisor_internal.hpp"

#include <algorithm>

namespace troupe::supervisor_detail {

namespace {

duration_ms window_of(const supervisor_state& st) {
  return st.pipe->config.speculate.value_or(st.deps.job->speculate);
}

void schedule_tick(self_ptr self, clock_type::time_point now) {
  auto& st = self->state;
  if (st.speculation_tick || st.speculating.empty())
    return;
  // At least 1 ms apart, for windows shorter than 4 ms.
  auto gap = std::max(window_of(st) / 4, duration_ms{1});
  auto at = std::max(st.speculating.front().due, now + gap);
  st.speculation_tick = true;
  self->delayed_send(self, at - now, speculate_atom::value);
}

} // namespace

void watch_speculation(self_ptr self, const job_entry& entry) {
  auto& st = self->state;
  // A job that speculates was started fresh (start_job clears `fresh` for
  // restarts and cancels); the few fresh jobs that claim instead (a job
  // due later, bad input) ignore the tick.
  auto window = window_of(st);
  if (!entry.spec.fresh || window.count() <= 0)
    return;
  auto now = self->clock().now();
  // A weak address: it keeps a finished actor's control block (not its
  // state) until the entry goes, a window and a quarter at most.
  st.speculating.push_back({now + window, entry.actor.address()});
  schedule_tick(self, now);
}

void end_due_speculations(self_ptr self) {
  auto& st = self->state;
  st.speculation_tick = false;
  auto now = self->clock().now();
  while (!st.speculating.empty() && st.speculating.front().due <= now) {
    // Only jobs still running: most ended long before their window did.
    if (auto i = st.by_actor.find(st.speculating.front().job);
        i != st.by_actor.end())
      if (auto j = st.running.find(i->second); j != st.running.end())
        caf::anon_send(j->second.actor, speculate_atom::value);
    st.speculating.pop_front();
  }
  schedule_tick(self, now);
}

} // namespace troupe::supervisor_detail
