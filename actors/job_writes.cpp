#include "actors/job_actor_internal.hpp"

#include "actors/atoms.hpp"
#include "messages/errc.hpp"
#include "messages/json_text.hpp"
#include "messages/trace_context.hpp"

// Ordered writes and events of a job actor: every transition is one job_write,
// committed strictly in order; events go out only after their commit.

namespace troupe::job_detail {

std::int64_t now_ms(self_ptr self) {
  return self->state.deps->now_ms();
}

std::string job_span_id(self_ptr self) {
  auto& st = self->state;
  return derived_span_id(st.spec.job_id + '\x1f' + std::to_string(st.life));
}

std::string attempt_span_id(self_ptr self) {
  auto& st = self->state;
  return derived_span_id(st.spec.job_id + '\x1f' + std::to_string(st.life) +
                         '\x1f' + std::to_string(st.stage) + '\x1f' +
                         std::to_string(st.attempt));
}

job_event make_event(self_ptr self, event_type type) {
  auto& st = self->state;
  job_event ev;
  ev.type = to_string(type);
  ev.job_id = st.spec.job_id;
  ev.pipeline = st.spec.pipeline;
  ev.node = st.deps->node_id;
  ev.time_ms = now_ms(self);
  ev.correlation_id = st.spec.correlation_id;
  ev.tenant = st.spec.tenant;
  if (st.stage < static_cast<std::int32_t>(st.pipe->config.stages.size())) {
    ev.stage_index = st.stage;
    ev.stage = st.pipe->config.stages[st.stage].name;
    ev.attempt = st.attempt;
  }
  if (valid_traceparent(st.spec.traceparent)) {
    ev.trace_id = trace_id_of(st.spec.traceparent);
    bool job_level = is_job_level(type);
    ev.span_id = job_level ? job_span_id(self) : attempt_span_id(self);
    ev.parent_span_id =
        job_level ? st.spec.traceparent.substr(36, 16) : job_span_id(self);
  }
  if (ends_attempt(type))
    ev.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         st.attempt_ended - st.attempt_started)
                         .count();
  else if (is_terminal(type) && st.spec.submitted_at_ms > 0)
    ev.latency_ms =
        std::max<std::int64_t>(0, ev.time_ms - st.spec.submitted_at_ms);
  return ev;
}

job_event succeeded_event(self_ptr self, const std::string& result) {
  auto ev = make_event(self, event_type::job_succeeded);
  if (result.size() <= self->state.deps->event_result_max)
    ev.result = result;
  else
    ev.result_bytes = static_cast<std::int64_t>(result.size());
  return ev;
}

/// Publishes an event right away and keeps it for the next write.
/// The event log in the store keeps job-level events (started, retrying,
/// succeeded, dead-lettered, cancelled); what stage events say is in the
/// attempt history already (each attempt's start, duration, node, error), so
/// they are published on NATS only. This halves the rows a job writes.
bool persisted(const job_event& ev) {
  auto type = type_of(ev);
  return type && is_job_level(*type);
}

void publish_now(self_ptr self, job_event ev) {
  if (self->state.speculation.holds_events()) {
    // Nothing is committed yet: events wait for the commit, in order.
    self->state.speculation.events.push_back(std::move(ev));
    return;
  }
  if (self->state.deps->events)
    self->send(self->state.deps->events, ev);
  if (persisted(ev))
    self->state.writer.unlogged.push_back(std::move(ev));
}

void set_wait(self_ptr self, job_write& w, duration_ms delay) {
  w.next_attempt_at_ms = now_ms(self) + delay.count();
  w.wait_ms = delay.count();
  w.decided_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                     self->clock().now().time_since_epoch())
                     .count();
}

job_write make_write(self_ptr self, job_state state) {
  auto& st = self->state;
  job_write w;
  w.job_id = st.spec.job_id;
  w.pipeline = st.spec.pipeline;
  w.epoch = st.epoch;
  w.state = state;
  w.stage_index = st.stage;
  w.attempt = st.attempt;
  w.parent_id = st.spec.parent_id;
  w.batch_id = st.spec.batch_id;
  return w;
}

void report(self_ptr self, job_result res) {
  enter_phase(self, job_phase::done);
  res.job_id = self->state.delivered_id;
  self->send(self->state.parent, std::move(res));
  self->quit();
}

/// A newer run owns the job: stop everything without writing anything.
void abandon(self_ptr self, const caf::error& why) {
  stop_attempt(self);
  job_result res;
  res.outcome = code_of(why) == errc::stale_epoch ? job_outcome::fenced
                                                  : job_outcome::abandoned;
  res.error = describe(why);
  report(self, std::move(res));
}

void commit(self_ptr self, job_write w, std::vector<job_event> publish,
            std::function<void()> then) {
  auto& st = self->state;
  if (st.speculation.state == speculation_buffer::mode::create_pending)
    make_create(self, w, publish);
  // Events that were published when they happened are persisted now.
  auto& unlogged = st.writer.unlogged;
  if (!unlogged.empty()) {
    w.events.insert(w.events.begin(), unlogged.begin(), unlogged.end());
    std::vector<job_event>{}.swap(unlogged); // release the capacity too
  }
  for (auto& ev : publish)
    if (persisted(ev))
      w.events.push_back(ev);
  st.writer.queue.push_back(
      {std::move(w), std::move(publish), std::move(then)});
  pump_writes(self);
}

/// A write PostgreSQL refuses (its data) or keeps failing for a reason
/// other than an outage: retrying it forever would hold the job's slot and
/// its message for good. The job is dead-lettered with a record that holds
/// nothing from the refused write but the error; if even that cannot be
/// written, the delivery is given up as unrecordable.
void dead_letter_unwritable(self_ptr self, const caf::error& err) {
  auto& st = self->state;
  if (st.writer.unwritable) {
    job_result res;
    res.outcome = job_outcome::unrecordable;
    res.error = describe(err);
    report(self, std::move(res));
    return;
  }
  st.writer.unwritable = true;
  enter_phase(self, job_phase::finishing);
  ++st.seq; // drops pending timers
  stop_attempt(self);
  std::vector<pending_write>{}.swap(st.writer.queue);
  std::vector<checkpoint>{}.swap(st.speculation.checkpoints);
  commit_dead_letter(self, make_write(self, job_state::dead_lettered),
                     "store_write_failed",
                     valid_text(describe(err)).substr(0, 2048));
}

void commit_dead_letter(self_ptr self, job_write w, const std::string& code,
                        const std::string& reason) {
  w.last_error = code + ": " + reason;
  auto dead = make_event(self, event_type::job_dead_lettered);
  dead.error_code = code;
  dead.error = reason;
  finish_with(self, std::move(w), {std::move(dead)});
}

void pump_writes(self_ptr self) {
  auto& st = self->state;
  if (st.writer.in_flight || st.writer.queue.empty())
    return;
  st.writer.in_flight = true;
  self->request(st.deps->store, caf::infinite, st.writer.queue.front().write)
      .then(
          [self](ok_atom) {
            auto& st = self->state;
            auto& writer = st.writer;
            writer.in_flight = false;
            auto done = std::move(writer.queue.front());
            writer.queue.erase(writer.queue.begin());
            if (writer.queue.empty())
              writer.queue.shrink_to_fit();
            // Publish only after the commit: an event never announces a state
            // the system of record does not have.
            // Several events go as one message (a job done in one commit
            // has eight): fewer mailbox round trips, same order.
            if (st.deps->events && done.publish.size() == 1)
              self->send(st.deps->events, std::move(done.publish.front()));
            else if (st.deps->events && !done.publish.empty())
              self->send(st.deps->events, std::move(done.publish));
            if (done.write.create) {
              // The job exists now: what happened while its create was
              // under way is announced (and logged with the next write).
              st.speculation.state = speculation_buffer::mode::off;
              auto later = std::move(st.speculation.events);
              st.speculation.events.clear();
              for (auto& ev : later)
                publish_now(self, std::move(ev));
            }
            if (done.then)
              done.then();
            pump_writes(self);
          },
          [self](caf::error& err) {
            auto& st = self->state;
            st.writer.in_flight = false;
            if (code_of(err) == errc::stale_epoch) {
              abandon(self, err);
              return;
            }
            if (code_of(err) == errc::job_exists) {
              on_job_exists(self);
              return;
            }
            if (code_of(err) == errc::unstorable ||
                (code_of(err) != errc::unavailable &&
                 ++st.writer.failures >= max_write_failures)) {
              dead_letter_unwritable(self, err);
              return;
            }
            // The store is unavailable: keep the write and try again later; a
            // finished stage is committed when the store returns, never
            // dropped.
            self->delayed_send(self, st.deps->rewrite_delay,
                               rewrite_atom::value);
          });
}

} // namespace troupe::job_detail
