#pragma once

// What the intake does with a delivered message once its job_result is in:
// a pure function of the result, so that every outcome's ack, nak, term or
// silence is decided (and tested) in one place.

#include <cstdint>

#include "messages/job.hpp"

namespace troupe {

/// What happens to a finished delivery's message.
enum class delivery_action : std::uint8_t {
  /// Acknowledge: the outcome is committed (or nothing is left to do).
  ack,
  /// Negative acknowledgement with a delay: the broker redelivers it.
  nak,
  /// Terminate: the broker never redelivers it.
  term,
  /// Neither: the message is left to the broker (another holder owns it).
  leave,
  /// Neither, and the held delivery it duplicates takes this handle.
  replace_held,
};

/// The decision for one finished delivery.
struct delivery_verdict {
  delivery_action action = delivery_action::ack;
  /// Redelivery delay (nak only).
  std::int64_t nak_delay_ms = 0;
  /// The message is dropped as bad input (logged, counted as invalid).
  bool dropped = false;
};

/// Redelivery delay of an abandoned run's message.
constexpr std::int64_t abandoned_nak_delay_ms = 1000;

/// Decides what becomes of the message behind `res`:
/// - finished, already_terminal: ack (a lost ack only causes a redelivery
///   that the store skips);
/// - same_message: replace the held delivery, ack nothing;
/// - conflict: ack and drop; unrecordable: term and drop;
/// - fenced: leave it, the owner's delivery is the live one;
/// - requeued: nak after requeue_ms; abandoned: nak after a second;
/// - parked: leave it (a supervisor keeps a parked job's delivery; one that
///   reached the intake anyway must not be acked while the job waits).
delivery_verdict verdict_for(const job_result& res) noexcept;

} // namespace troupe
