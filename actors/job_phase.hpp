#pragma once

// The phases of a job actor (actors/job_actor.hpp) and which transitions
// between them are allowed: a job actor moves only through enter_phase
// (job_actor_internal.hpp), which checks this table.

#include <atomic>
#include <cstdint>
#include <string_view>

namespace troupe {

/// What a job actor is doing.
enum class job_phase : std::uint8_t {
  /// Spawned, nothing asked yet.
  starting,
  /// Waiting for the store to hand over the job (claim), nothing runs.
  claiming,
  /// An attempt's stage actor waits for a resource of its kind (an exec
  /// thread): its timeout is not armed yet (stage_kind::queues_attempts).
  waiting_for_slot,
  /// An attempt runs.
  running,
  /// A stage's checkpoint commits; the next stage starts once it is durable.
  committing,
  /// Waiting for the retry delay of a failed attempt (committed `retrying`).
  backing_off,
  /// A callback stage's wait commits (`waiting`); then the store holds the
  /// job and the actor quits.
  handing_to_store,
  /// A terminal write is under way: nothing else may happen.
  finishing,
  /// The result is reported; the actor quits.
  done,
};

/// Name of a phase, as `tree` shows it ("waiting_for_slot").
std::string_view to_string(job_phase x) noexcept;

/// True if a job actor may go from `from` to `to`. Staying in `finishing`
/// is allowed (a terminal write replaced by another); nothing leaves `done`.
bool may_enter(job_phase from, job_phase to) noexcept;

/// True while an attempt's stage actor is alive (waiting_for_slot, running).
constexpr bool attempt_alive(job_phase x) noexcept {
  return x == job_phase::waiting_for_slot || x == job_phase::running;
}

/// Transitions refused by may_enter since the process started (they are
/// logged and carried out anyway: a refused one is a bug, which the actor
/// tests check for by reading this counter).
std::uint64_t refused_phase_transitions() noexcept;

/// Counts a refused transition (for refused_phase_transitions).
void count_refused_phase_transition() noexcept;

} // namespace troupe
