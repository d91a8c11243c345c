#pragma once

// What a running node should be doing, decided from what it observes: the
// health of its dependencies, drain and resume requests, the shutdown
// request, escalations from its guard, and the jobs it still holds. A pure
// piece with no clock or thread of its own, so every path (degraded and
// back, drain, drain cancelled, shutdown during a drain, the grace running
// out) is unit-tested without servers; runtime/node/node.cpp feeds it every
// tick and carries out its answer.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace troupe {

/// One observation of the node.
struct governor_input {
  std::chrono::steady_clock::time_point now;
  bool store_healthy = true;
  bool nats_connected = true;
  /// An admin `drain` or `resume` arrived since the last tick.
  bool drain_requested = false;
  bool resume_requested = false;
  /// SIGINT/SIGTERM (or the demo's end).
  bool shutdown_requested = false;
  /// One of the node's own actors died (see actors/node_guard.hpp): the
  /// node cannot be trusted to run jobs any longer.
  bool escalated = false;
  /// Jobs held by this node's intakes.
  std::int64_t in_flight = 0;
};

/// Something worth a log line, in the order it happened.
enum class governor_note {
  degraded_store,  // PostgreSQL unreachable: not fetching
  degraded_nats,   // NATS unreachable: not fetching
  recovered,       // dependencies back: fetching again
  drain_started,   // admin drain: no new jobs, exit when empty
  drain_cancelled, // admin resume during a drain
  escalated,       // an own actor died: drain and exit non-zero
  shutting_down,   // shutdown requested: finishing in-flight jobs
  handing_back,    // grace over with jobs left: they go back to the broker
};

/// What the node should do after one observation.
struct governor_step {
  /// Whether the intakes may fetch (before cluster-wide pauses).
  bool fetching = true;
  /// A state to announce in heartbeats ("up", "draining"), if it changed.
  std::optional<std::string> announce;
  /// Stop taking new work at the edges (submit API, sweeper) and pause the
  /// intakes: true on the one step that starts the final drain.
  bool begin_shutdown = false;
  /// Leave the run loop; stop() follows.
  bool exit = false;
  std::vector<governor_note> notes;
};

class node_governor {
public:
  explicit node_governor(duration_ms drain_grace) : grace_(drain_grace) {}

  governor_step step(const governor_input& in);

  bool degraded() const noexcept { return degraded_; }
  bool draining() const noexcept { return draining_; }
  bool stopping() const noexcept { return stopping_; }
  /// 0, or 3 once an own actor died (systemd restarts the node).
  int exit_code() const noexcept { return escalated_ ? 3 : 0; }
  /// "healthy", "degraded" or "unhealthy" (after an escalation), for
  /// heartbeats.
  std::string health() const;

private:
  void observe_dependencies(const governor_input& in, governor_step& out);
  void observe_requests(const governor_input& in, governor_step& out);
  void observe_end(const governor_input& in, governor_step& out);
  void start_drain(const governor_input& in, governor_step& out);

  duration_ms grace_;
  bool degraded_ = false;
  bool draining_ = false;
  bool stopping_ = false;
  bool escalated_ = false;
  std::chrono::steady_clock::time_point deadline_{};
};

} // namespace troupe
