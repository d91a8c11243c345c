#include "actors/pipeline_supervisor.hpp"

#include <algorithm>
#include <optional>

#include "actors/atoms.hpp"
#include "actors/delivery_verdict.hpp"
#include "actors/pipeline_supervisor_internal.hpp"
#include "messages/errc.hpp"

namespace troupe {

namespace supervisor_detail {

// The supervisor is a typed actor, and CAF 0.17 lets a typed actor send()
// only to typed actors: messages to its job actors and to the intake (plain
// caf::actor handles; neither replies) go out with anon_send.

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
    caf::anon_send(entry.actor, cancel_atom::value);
  st.by_actor[entry.actor.address()] = entry.spec.job_id;
  watch_speculation(self, entry);
  auto id = entry.spec.job_id;
  st.running[id] = std::move(entry);
}

/// How `job_id` is held here (running, parked or queued), if it is.
struct held_job {
  std::uint64_t delivery = 0;
  std::uint64_t stream_seq = 0;
  std::int32_t gen = 0; ///< the store's publication it was claimed from
};

std::optional<held_job> held_delivery(self_ptr self,
                                      const std::string& job_id) {
  auto& st = self->state;
  if (auto i = st.running.find(job_id); i != st.running.end())
    return held_job{i->second.delivery, i->second.spec.stream_seq,
                    i->second.spec.gen};
  if (auto p = st.parked.find(std::pmr::string{job_id, &st.pool});
      p != st.parked.end())
    return held_job{p->second.delivery, p->second.stream_seq, p->second.gen};
  for (auto& q : st.queued)
    if (q.spec.job_id == job_id)
      return held_job{q.delivery, q.spec.stream_seq, q.spec.gen};
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
    if (st.deps.gate &&
        !st.deps.gate->try_acquire(i->spec.tenant, i->spec.job_id)) {
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
  if (res.outcome == job_outcome::abandoned)
    release_abandoned(self, job_id);
  if (gave_up(res.outcome))
    ++st.stats.abandoned;
  else if (res.outcome == job_outcome::already_terminal)
    ++st.stats.skipped;
  else if (res.state == job_state::succeeded)
    ++st.stats.succeeded;
  else if (res.state == job_state::dead_lettered)
    ++st.stats.dead_lettered;
  else if (res.state == job_state::cancelled)
    ++st.stats.cancelled;
  if (st.deps.intake)
    caf::anon_send(st.deps.intake, finished_atom::value, delivery,
                   std::move(res));
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

namespace {

/// The supervisor goes (node shutdown): its jobs go with it.
void on_exit(self_ptr self, caf::exit_msg& em) {
  auto& st = self->state;
  for (auto& [id, entry] : st.running) {
    self->demonitor(entry.actor);
    self->send_exit(entry.actor, em.reason);
  }
  st.running.clear();
  st.by_actor.clear();
  self->quit(em.reason);
}

/// A job actor went away: restart it, or give its delivery up.
void on_down(self_ptr self, caf::down_msg& dm) {
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
  res.outcome = job_outcome::abandoned;
  res.error = "job actor crashed " + std::to_string(entry.restarts + 1) +
              " times: " + describe(dm.reason);
  finish(self, job_id, std::move(res));
}

/// A delivery arrived: turn it away (duplicate, tenant over its limit) or
/// queue it.
void on_submit(self_ptr self, job_spec& spec, std::uint64_t delivery) {
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
    //
    // A message of a later generation is the store's own publication
    // (a rescue, a due retry): the store took the job from the run held
    // here, which is fenced and will end in a fenced commit. Acking it
    // would lose the job (chaos seed 2: a zombie woke up holding it), so
    // it comes back once the stale run is gone.
    job_result res;
    res.job_id = e.spec.job_id;
    if (e.spec.stream_seq != 0 && e.spec.stream_seq == held->stream_seq) {
      res.outcome = job_outcome::same_message;
      res.same_as = held->delivery;
    } else if (e.spec.gen > held->gen) {
      res.outcome = job_outcome::requeued;
      res.requeue_ms = abandoned_nak_delay_ms;
    } else {
      res.outcome = job_outcome::already_terminal;
    }
    ++st.stats.skipped;
    if (st.deps.intake)
      caf::anon_send(st.deps.intake, finished_atom::value, delivery,
                     std::move(res));
    return;
  }
  if (turned_away_while_releasing(self, e.spec, e.delivery))
    return;
  if (st.deps.gate && st.deps.gate->limited(e.spec.tenant)) {
    // Enough of this tenant's jobs wait here already: give this one
    // back to the broker for a while instead of holding a slot of
    // the pipeline that another tenant could use.
    auto limit = st.deps.gate->limit(e.spec.tenant);
    auto waiting = std::count_if(
        st.queued.begin(), st.queued.end(),
        [&](const job_entry& q) { return q.spec.tenant == e.spec.tenant; });
    if (waiting >= limit) {
      job_result res;
      res.job_id = e.spec.job_id;
      res.outcome = job_outcome::requeued;
      res.requeue_ms = 500;
      if (st.deps.intake)
        caf::anon_send(st.deps.intake, finished_atom::value, e.delivery,
                       std::move(res));
      return;
    }
  }
  st.queued.push_back(std::move(e));
  fill_slots(self);
}

caf::result<ok_atom> on_cancel(self_ptr self, const std::string& job_id) {
  auto& st = self->state;
  if (auto i = st.running.find(job_id); i != st.running.end()) {
    i->second.cancel = true;
    caf::anon_send(i->second.actor, cancel_atom::value);
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
}

pipeline_stats current_stats(self_ptr self) {
  auto& st = self->state;
  auto s = st.stats;
  s.running = static_cast<std::int64_t>(in_flight(self));
  s.waiting = static_cast<std::int64_t>(st.parked.size());
  for (auto& kv : st.running)
    s.waiting += kv.second.waiting;
  s.queued = static_cast<std::int64_t>(st.queued.size());
  s.max_in_flight = st.pipe->config.max_in_flight;
  return s;
}

/// Runs a job waiting for a retry now (false if it does not wait).
caf::result<bool> on_retry_now(self_ptr self, const std::string& job_id) {
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
      .then([rp](bool fired) mutable { rp.deliver(fired); },
            [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

} // namespace

pipeline_supervisor_actor::behavior_type
pipeline_supervisor(self_ptr self, std::shared_ptr<const pipeline_def> pipe,
                    supervisor_deps deps) {
  self->state.pipe = std::move(pipe);
  self->state.deps = std::move(deps);
  self->state.stats.pipeline = self->state.pipe->config.name;
  // When the supervisor goes (node shutdown), its jobs go with it: a job
  // parked on a long retry timer would otherwise keep the actor system
  // alive. Their messages are unacked, so the broker hands them to others.
  self->set_exit_handler([self](caf::exit_msg& em) { on_exit(self, em); });
  self->set_down_handler([self](caf::down_msg& dm) { on_down(self, dm); });
  return {
      [self](submit_atom, job_spec& spec, std::uint64_t delivery) {
        on_submit(self, spec, delivery);
      },
      [self](fill_atom) { fill_slots(self); },
      [self](job_result& res) {
        if (res.outcome == job_outcome::parked) {
          park(self, res);
          return;
        }
        auto id = res.job_id;
        finish(self, id, std::move(res));
      },
      [self](speculate_atom) { end_due_speculations(self); },
      [self](wake_atom, std::int64_t tick) {
        // Only the tick for the earliest wake-up counts; one superseded by
        // an earlier park is dropped (its work was done or is scheduled).
        if (tick == self->state.next_tick.time_since_epoch().count())
          wake_due(self);
      },
      [self](cancel_atom, const std::string& job_id) {
        return on_cancel(self, job_id);
      },
      [self](stats_atom) { return current_stats(self); },
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
      [self](now_atom, const std::string& job_id) {
        return on_retry_now(self, job_id);
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

} // namespace supervisor_detail

pipeline_supervisor_actor
spawn_pipeline_supervisor(caf::actor_system& sys,
                          std::shared_ptr<const pipeline_def> pipe,
                          supervisor_deps deps) {
  return sys.spawn(supervisor_detail::pipeline_supervisor, std::move(pipe),
                   std::move(deps));
}

} // namespace troupe
