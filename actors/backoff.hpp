#pragma once

// Retry decisions as plain functions: the job actor asks these, tests call
// them directly. No actor, clock or I/O in here.

#include <cstdint>
#include <random>
#include <string>

#include "config/config.hpp"

namespace troupe {

/// Delay before attempt `failed_attempt + 1` without jitter:
/// min(max, initial * multiplier^(failed_attempt - 1)). `failed_attempt` is
/// 1-based.
duration_ms base_delay(const retry_policy& p, int failed_attempt) noexcept;

/// Applies the policy's jitter to a base delay using `rng`.
duration_ms apply_jitter(jitter_kind j, duration_ms d, std::mt19937_64& rng);

/// base_delay followed by apply_jitter.
duration_ms retry_delay(const retry_policy& p, int failed_attempt,
                        std::mt19937_64& rng);

/// What to do after a failed attempt.
enum class retry_decision : std::uint8_t {
  retry,         ///< schedule another attempt
  exhausted,     ///< max_attempts reached: dead-letter
  non_retryable, ///< the error must never be retried: dead-letter
};

/// Decides whether failed attempt number `attempt` (1-based) is retried.
retry_decision decide_retry(const retry_policy& p, int attempt,
                            const std::string& error_code, bool retryable);

} // namespace troupe
