#pragma once

// The kinds of job_event, with their wire names ("job.started", ...). The
// wire names are public API (docs/wire-format.md): this is the one place
// that spells them.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "messages/job.hpp"

namespace troupe {

/// What a job_event announces.
enum class event_type : std::uint8_t {
  job_started,
  stage_started,
  stage_succeeded,
  stage_failed,
  job_retrying,
  job_succeeded,
  job_dead_lettered,
  job_cancelled,
  /// Written by the admin API when a job is replayed (never by a job actor).
  job_replayed,
  /// A running stage reported progress or a heartbeat (rate-limited).
  stage_progress,
  /// A callback stage waits in the store for an outside system.
  job_waiting,
  /// A stage spawned child jobs; the job waits in the store for them.
  job_spawned,
};

/// Wire name of an event type ("job.dead_lettered").
std::string_view to_string(event_type x) noexcept;

/// Parses a wire name; returns false if unknown.
bool from_string(std::string_view text, event_type& out) noexcept;

/// The type of `ev`, if its type string is one troupe knows.
std::optional<event_type> type_of(const job_event& ev) noexcept;

/// Job-level events (job.*), which the store's event log keeps; stage events
/// are published only (the attempt history says the same).
constexpr bool is_job_level(event_type x) noexcept {
  return x != event_type::stage_started && x != event_type::stage_succeeded &&
         x != event_type::stage_failed && x != event_type::stage_progress;
}

/// Events that end an attempt (they carry its duration).
constexpr bool ends_attempt(event_type x) noexcept {
  return x == event_type::stage_succeeded || x == event_type::stage_failed;
}

/// Events that announce a terminal state (they carry the job's latency).
constexpr bool is_terminal(event_type x) noexcept {
  return x == event_type::job_succeeded || x == event_type::job_dead_lettered ||
         x == event_type::job_cancelled;
}

/// The state a terminal event announces (job_state::succeeded for
/// job.succeeded ...); job_state::running for any other event.
constexpr job_state terminal_state(event_type x) noexcept {
  switch (x) {
  case event_type::job_succeeded:
    return job_state::succeeded;
  case event_type::job_dead_lettered:
    return job_state::dead_lettered;
  case event_type::job_cancelled:
    return job_state::cancelled;
  default:
    return job_state::running;
  }
}

} // namespace troupe
