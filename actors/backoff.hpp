#pragma once

// Retry decisions as plain functions: the job actor asks these, tests call
// them directly. No actor, clock or I/O in here.

#include <cstdint>
#include <string>

#include "config/config.hpp"

namespace troupe {

/// A tiny, seedable random bit generator (SplitMix64). A job actor holds one
/// while it waits for a retry, so it must cost 8 bytes, not the 2.5 KiB of a
/// std::mt19937_64.
class jitter_rng {
public:
  using result_type = std::uint64_t;

  explicit jitter_rng(std::uint64_t seed = 0) noexcept : state_(seed) {}

  void seed(std::uint64_t s) noexcept { state_ = s; }

  static constexpr result_type min() noexcept { return 0; }
  static constexpr result_type max() noexcept { return ~result_type{0}; }

  result_type operator()() noexcept {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

private:
  std::uint64_t state_;
};

/// Delay before attempt `failed_attempt + 1` without jitter:
/// min(max, initial * multiplier^(failed_attempt - 1)). `failed_attempt` is
/// 1-based.
duration_ms base_delay(const retry_policy& p, int failed_attempt) noexcept;

/// Applies the policy's jitter to a base delay using `rng`.
duration_ms apply_jitter(jitter_kind j, duration_ms d, jitter_rng& rng);

/// base_delay followed by apply_jitter.
duration_ms retry_delay(const retry_policy& p, int failed_attempt,
                        jitter_rng& rng);

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
