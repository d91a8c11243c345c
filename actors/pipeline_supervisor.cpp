#include "actors/pipeline_supervisor.hpp"

#include <algorithm>
#include <deque>
#include <unordered_map>

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "messages/errc.hpp"
#include "messages/stats.hpp"

#include <chrono>
#include <functional>
#include <memory_resource>
#include <optional>
#include <vector>

namespace troupe {

namespace {

struct job_entry {
  job_spec spec;
  std::uint64_t delivery = 0;
  caf::actor actor;
  int restarts = 0;
  bool cancel = false;
  /// The job actor waits for a retry.
  bool waiting = false;
  /// Holds one of its tenant's slots in the gate.
  bool gated = false;
};

using clock_type = caf::actor_clock::clock_type;

/// A job waiting for a long retry with no actor (job_result::park_ms): what
/// it takes to start it again (its new actor claims it and loads payload
/// and checkpoints from the store). Kept apart from the running jobs, small,
/// and allocated from the supervisor's own pool: 100,000 of them must not
/// be scattered over the pages their freed actors leave behind.
struct parked_job {
  explicit parked_job(std::pmr::memory_resource* mr)
      : tenant(mr), correlation_id(mr) {}
  std::pmr::string tenant;
  std::pmr::string correlation_id;
  std::int32_t priority = 0;
  std::int64_t submitted_at_ms = 0;
  std::uint64_t delivery = 0;
  int restarts = 0;
  bool gated = false;
  /// Tags the timer that wakes it (a retry-now may wake it earlier).
  std::uint32_t seq = 0;
  std::int32_t stage = -1;
  std::int32_t attempt = 0;
  std::int32_t life = 1;
  std::int64_t since_ms = 0;
  std::uint64_t stream_seq = 0;
};

/// When a parked job is due; a min-heap of these drives one timer.
struct wake_up {
  clock_type::time_point due;
  std::uint32_t seq;
  std::pmr::string job_id;
  bool operator>(const wake_up& x) const { return due > x.due; }
};

struct supervisor_state {
  std::shared_ptr<const pipeline_def> pipe;
  supervisor_deps deps;
  std::unordered_map<std::string, job_entry> running;
  std::unordered_map<caf::actor_addr, std::string> by_actor;
  std::deque<job_entry> queued;
  std::pmr::unsynchronized_pool_resource pool;
  std::pmr::unordered_map<std::pmr::string, parked_job> parked{&pool};
  std::pmr::vector<wake_up> wake_ups{&pool};
  /// The earliest wake-up tick already scheduled (max: none).
  clock_type::time_point next_tick = clock_type::time_point::max();
  std::uint32_t next_park_seq = 0;
  pipeline_stats stats;

  static inline const char* name = "pipeline_supervisor";
};

using self_ptr = caf::stateful_actor<supervisor_state>*;

void start_job(self_ptr self, job_entry entry) {
  auto& st = self->state;
  entry.waiting = false;
  // A restarted or cancelled job claims before anything runs.
  if (entry.restarts > 0 || entry.cancel)
    entry.spec.fresh = false;
  entry.actor = spawn_job_actor(self->system(), entry.spec, st.pipe,
                                st.deps.job, caf::actor_cast<caf::actor>(self));
  self->monitor(entry.actor);
  if (entry.cancel)
    self->send(entry.actor, cancel_atom::value);
  st.by_actor[entry.actor.address()] = entry.spec.job_id;
  auto id = entry.spec.job_id;
  st.running[id] = std::move(entry);
}

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
          bool cancel = false) {
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

/// The delivery and stream sequence under which `job_id` is held here
/// (running, parked or queued), if it is.
std::optional<std::pair<std::uint64_t, std::uint64_t>>
held_delivery(self_ptr self, const std::string& job_id) {
  auto& st = self->state;
  if (auto i = st.running.find(job_id); i != st.running.end())
    return std::make_pair(i->second.delivery, i->second.spec.stream_seq);
  if (auto p = st.parked.find(std::pmr::string{job_id, &st.pool});
      p != st.parked.end())
    return std::make_pair(p->second.delivery, p->second.stream_seq);
  for (auto& q : st.queued)
    if (q.spec.job_id == job_id)
      return std::make_pair(q.delivery, q.spec.stream_seq);
  return std::nullopt;
}

/// Jobs holding a slot: running (or between attempts) and parked.
std::size_t in_flight(self_ptr self) {
  return self->state.running.size() + self->state.parked.size();
}

void fill_slots(self_ptr self) {
  auto& st = self->state;
  auto cap = static_cast<std::size_t>(st.pipe->config.max_in_flight);
  // In arrival order, skipping jobs whose tenant is at its limit: one busy
  // tenant does not hold up the others.
  for (auto i = st.queued.begin();
       i != st.queued.end() && in_flight(self) < cap;) {
    if (st.deps.gate && !st.deps.gate->try_acquire(i->spec.tenant)) {
      ++i;
      continue;
    }
    auto e = std::move(*i);
    i = st.queued.erase(i);
    e.gated = st.deps.gate != nullptr;
    start_job(self, std::move(e));
  }
}

void finish(self_ptr self, const std::string& job_id, job_result res) {
  auto& st = self->state;
  auto i = st.running.find(job_id);
  if (i == st.running.end())
    return;
  auto delivery = i->second.delivery;
  auto tenant = i->second.spec.tenant;
  bool gated = i->second.gated;
  self->demonitor(i->second.actor);
  st.by_actor.erase(i->second.actor.address());
  st.running.erase(i);
  if (res.abandoned)
    ++st.stats.abandoned;
  else if (res.already_terminal)
    ++st.stats.skipped;
  else if (res.state == job_state::succeeded)
    ++st.stats.succeeded;
  else if (res.state == job_state::dead_lettered)
    ++st.stats.dead_lettered;
  else if (res.state == job_state::cancelled)
    ++st.stats.cancelled;
  if (st.deps.intake)
    self->send(st.deps.intake, finished_atom::value, delivery, std::move(res));
  if (gated)
    st.deps.gate->release(tenant); // wakes every supervisor, this one too
  fill_slots(self);
}

/// Asks every running job actor (at most `limit`) for its brief and answers
/// with them plus the jobs held back for a free slot. A job actor that does
/// not answer in time (busy, or gone) is left out rather than waited for.
caf::result<std::vector<job_brief>> describe_tree(self_ptr self,
                                                  std::int32_t limit) {
  auto& st = self->state;
  struct gather {
    std::vector<job_brief> briefs;
    std::size_t pending = 0;
  };
  auto g = std::make_shared<gather>();
  auto rp = self->make_response_promise<std::vector<job_brief>>();
  for (auto& e : st.queued) {
    if (static_cast<std::int32_t>(g->briefs.size()) >= limit)
      break;
    job_brief b;
    b.job_id = e.spec.job_id;
    b.pipeline = st.pipe->config.name;
    b.state = "queued";
    g->briefs.push_back(std::move(b));
  }
  auto now = st.deps.job->now_ms();
  for (auto& [id, p] : st.parked) {
    if (static_cast<std::int32_t>(g->briefs.size()) >= limit)
      break;
    job_brief b;
    b.job_id = std::string{id};
    b.pipeline = st.pipe->config.name;
    b.state = "hibernating"; // no actor until its retry is due
    b.stage_index = p.stage;
    if (p.stage >= 0 &&
        p.stage < static_cast<std::int32_t>(st.pipe->config.stages.size()))
      b.stage = st.pipe->config.stages[p.stage].name;
    b.attempt = p.attempt;
    b.life = p.life;
    b.restarts = p.restarts;
    b.for_ms = now - p.since_ms;
    g->briefs.push_back(std::move(b));
  }
  std::vector<std::pair<caf::actor, int>> asks;
  for (auto& [id, e] : st.running) {
    if (static_cast<std::int32_t>(asks.size() + g->briefs.size()) >= limit)
      break;
    asks.emplace_back(e.actor, e.restarts);
  }
  if (asks.empty()) {
    rp.deliver(std::move(g->briefs));
    return rp;
  }
  g->pending = asks.size();
  for (auto& [actor, restarts] : asks) {
    self->request(actor, std::chrono::seconds{1}, tree_atom::value)
        .then(
            [g, rp, restarts = restarts](job_brief& b) mutable {
              b.restarts = restarts;
              g->briefs.push_back(std::move(b));
              if (--g->pending == 0)
                rp.deliver(std::move(g->briefs));
            },
            [g, rp](caf::error&) mutable {
              if (--g->pending == 0)
                rp.deliver(std::move(g->briefs));
            });
  }
  return rp;
}

caf::behavior pipeline_supervisor(self_ptr self,
                                  std::shared_ptr<const pipeline_def> pipe,
                                  supervisor_deps deps) {
  self->state.pipe = std::move(pipe);
  self->state.deps = std::move(deps);
  self->state.stats.pipeline = self->state.pipe->config.name;
  // When the supervisor goes (node shutdown), its jobs go with it: a job
  // parked on a long retry timer would otherwise keep the actor system
  // alive. Their messages are unacked, so the broker hands them to others.
  self->set_exit_handler([self](caf::exit_msg& em) {
    auto& st = self->state;
    for (auto& [id, entry] : st.running) {
      self->demonitor(entry.actor);
      self->send_exit(entry.actor, em.reason);
    }
    st.running.clear();
    st.by_actor.clear();
    self->quit(em.reason);
  });
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    auto i = st.by_actor.find(dm.source);
    if (i == st.by_actor.end())
      return;
    auto job_id = i->second;
    st.by_actor.erase(i);
    auto& entry = st.running[job_id];
    // A job actor that quits normally has already sent its result, which
    // arrives before this down message; anything else is a crash.
    if (entry.restarts < st.deps.max_restarts) {
      ++entry.restarts;
      ++st.stats.restarts;
      auto e = std::move(entry);
      st.running.erase(job_id);
      // Claiming again bumps the epoch and resumes at the first stage
      // without a checkpoint: nothing is lost, nothing completed re-runs.
      start_job(self, std::move(e));
      return;
    }
    job_result res;
    res.job_id = job_id;
    res.abandoned = true;
    res.error = "job actor crashed " + std::to_string(entry.restarts + 1) +
                " times: " + describe(dm.reason);
    finish(self, job_id, std::move(res));
  });
  return {
      [self](submit_atom, job_spec& spec, std::uint64_t delivery) {
        auto& st = self->state;
        job_entry e;
        e.spec = std::move(spec);
        e.delivery = delivery;
        if (auto held = held_delivery(self, e.spec.job_id)) {
          // The job is held here already (running, parked or queued): its
          // holder owns it. Another message of the job is acked as a
          // duplicate; the same message redelivered (same stream sequence:
          // the broker thinks it is lost, e.g. after an outage longer than
          // ack_wait) must not be: acking it deletes the job's only message
          // while the job is unfinished. It replaces the held delivery.
          job_result res;
          res.job_id = e.spec.job_id;
          if (e.spec.stream_seq != 0 && e.spec.stream_seq == held->second)
            res.same_as = held->first;
          else
            res.already_terminal = true;
          ++st.stats.skipped;
          if (st.deps.intake)
            self->send(st.deps.intake, finished_atom::value, delivery,
                       std::move(res));
          return;
        }
        if (st.deps.gate && st.deps.gate->limited(e.spec.tenant)) {
          // Enough of this tenant's jobs wait here already: give this one
          // back to the broker for a while instead of holding a slot of
          // the pipeline that another tenant could use.
          auto limit = st.deps.gate->limit(e.spec.tenant);
          auto waiting = std::count_if(st.queued.begin(), st.queued.end(),
                                       [&](const job_entry& q) {
                                         return q.spec.tenant == e.spec.tenant;
                                       });
          if (waiting >= limit) {
            job_result res;
            res.job_id = e.spec.job_id;
            res.requeue_ms = 500;
            if (st.deps.intake)
              self->send(st.deps.intake, finished_atom::value, e.delivery,
                         std::move(res));
            return;
          }
        }
        st.queued.push_back(std::move(e));
        fill_slots(self);
      },
      [self](fill_atom) { fill_slots(self); },
      [self](job_result& res) {
        if (res.park_ms > 0) {
          park(self, res);
          return;
        }
        auto id = res.job_id;
        finish(self, id, std::move(res));
      },
      [self](wake_atom, std::int64_t tick) {
        // Only the tick for the earliest wake-up counts; one superseded by
        // an earlier park is dropped (its work was done or is scheduled).
        if (tick == self->state.next_tick.time_since_epoch().count())
          wake_due(self);
      },
      [self](cancel_atom, const std::string& job_id) -> caf::result<ok_atom> {
        auto& st = self->state;
        if (auto i = st.running.find(job_id); i != st.running.end()) {
          i->second.cancel = true;
          self->send(i->second.actor, cancel_atom::value);
          return ok_atom::value;
        }
        if (auto i = st.parked.find(std::pmr::string{job_id, &st.pool});
            i != st.parked.end()) {
          wake(self, i, true); // its new actor claims and records the cancel
          return ok_atom::value;
        }
        for (auto i = st.queued.begin(); i != st.queued.end(); ++i) {
          if (i->spec.job_id == job_id) {
            // Not claimed yet: start it now so that it claims the job and
            // records the cancel in the store, without waiting for a slot.
            auto e = std::move(*i);
            st.queued.erase(i);
            e.cancel = true;
            start_job(self, std::move(e));
            return ok_atom::value;
          }
        }
        return make_error(errc::unknown_job,
                          "job '" + job_id + "' is not running on this node");
      },
      [self](stats_atom) {
        auto& st = self->state;
        auto s = st.stats;
        s.running = static_cast<std::int64_t>(in_flight(self));
        s.waiting = static_cast<std::int64_t>(st.parked.size());
        for (auto& kv : st.running)
          s.waiting += kv.second.waiting;
        s.queued = static_cast<std::int64_t>(st.queued.size());
        s.max_in_flight = st.pipe->config.max_in_flight;
        return s;
      },
      [self](get_atom, const std::string& job_id) -> caf::result<caf::actor> {
        auto& st = self->state;
        if (auto i = st.running.find(job_id); i != st.running.end())
          return i->second.actor;
        return make_error(errc::unknown_job,
                          "job '" + job_id + "' not running");
      },
      [self](tree_atom, std::int32_t limit) {
        return describe_tree(self, limit);
      },
      [self](now_atom, const std::string& job_id) -> caf::result<bool> {
        auto& st = self->state;
        if (auto p = st.parked.find(std::pmr::string{job_id, &st.pool});
            p != st.parked.end()) {
          wake(self, p);
          return true;
        }
        auto i = st.running.find(job_id);
        if (i == st.running.end())
          return make_error(errc::unknown_job,
                            "job '" + job_id + "' is not running on this node");
        auto rp = self->make_response_promise<bool>();
        self->request(i->second.actor, std::chrono::seconds{2}, now_atom::value)
            .then(
                [rp](bool fired) mutable { rp.deliver(fired); },
                [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [self](waiting_atom, const std::string& job_id, bool on) {
        auto i = self->state.running.find(job_id);
        if (i != self->state.running.end())
          i->second.waiting = on;
      },
      [self](credit_atom) {
        auto& st = self->state;
        auto used = in_flight(self) + st.queued.size();
        auto cap = static_cast<std::size_t>(st.pipe->config.max_in_flight);
        return static_cast<std::int32_t>(used >= cap ? 0 : cap - used);
      },
  };
}

} // namespace

caf::actor spawn_pipeline_supervisor(caf::actor_system& sys,
                                     std::shared_ptr<const pipeline_def> pipe,
                                     supervisor_deps deps) {
  return sys.spawn(pipeline_supervisor, std::move(pipe), std::move(deps));
}

} // namespace troupe
