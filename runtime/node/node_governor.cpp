#include "runtime/node/node_governor.hpp"

namespace troupe {

governor_step node_governor::step(const governor_input& in) {
  governor_step out;
  observe_dependencies(in, out);
  observe_requests(in, out);
  observe_end(in, out);
  out.fetching = !degraded_ && !draining_ && !stopping_;
  return out;
}

std::string node_governor::health() const {
  if (escalated_)
    return "unhealthy";
  return degraded_ ? "degraded" : "healthy";
}

// While a dependency is unreachable, fetch nothing new (claims would only
// fail); in-flight jobs keep their results until the store takes them.
void node_governor::observe_dependencies(const governor_input& in,
                                         governor_step& out) {
  bool healthy = in.store_healthy && in.nats_connected;
  if (healthy != degraded_)
    return;
  degraded_ = !healthy;
  if (healthy)
    out.notes.push_back(governor_note::recovered);
  else
    out.notes.push_back(in.store_healthy ? governor_note::degraded_nats
                                         : governor_note::degraded_store);
}

void node_governor::observe_requests(const governor_input& in,
                                     governor_step& out) {
  if (stopping_)
    return;
  if (in.escalated && !escalated_) {
    escalated_ = true;
    out.notes.push_back(governor_note::escalated);
    if (!draining_)
      start_drain(in, out);
    return;
  }
  if (in.drain_requested && !draining_) {
    out.notes.push_back(governor_note::drain_started);
    start_drain(in, out);
  } else if (in.resume_requested && draining_ && !escalated_) {
    draining_ = false;
    out.announce = "up";
    out.notes.push_back(governor_note::drain_cancelled);
  }
}

void node_governor::start_drain(const governor_input& in, governor_step& out) {
  draining_ = true;
  deadline_ = in.now + grace_;
  out.announce = "draining";
}

// The end: a shutdown request, or a drain whose jobs are done (or whose
// grace ran out). A shutdown during a drain keeps the drain's deadline.
void node_governor::observe_end(const governor_input& in, governor_step& out) {
  if (!stopping_ && in.shutdown_requested) {
    stopping_ = true;
    out.begin_shutdown = true;
    out.notes.push_back(governor_note::shutting_down);
    if (!draining_) {
      deadline_ = in.now + grace_;
      out.announce = "draining";
    }
  }
  if (!stopping_ && !draining_)
    return;
  bool empty = in.in_flight == 0;
  if (!empty && in.now < deadline_)
    return;
  if (!stopping_) {
    stopping_ = true;
    out.begin_shutdown = true;
  }
  if (!empty)
    out.notes.push_back(governor_note::handing_back);
  out.exit = true;
}

} // namespace troupe
