#include "actors/backoff.hpp"

#include <algorithm>
#include <cmath>
#include <random>

namespace troupe {

duration_ms base_delay(const retry_policy& p, int failed_attempt) noexcept {
  auto n = std::max(failed_attempt, 1) - 1;
  // Computed in double and clamped before converting back: multiplier^n
  // overflows integers long before max_attempts gets unreasonable.
  double ms = static_cast<double>(p.initial.count()) *
              std::pow(std::max(p.multiplier, 1.0), n);
  double cap = static_cast<double>(p.max.count());
  if (!(ms < cap)) // also catches inf/nan
    ms = cap;
  return duration_ms{static_cast<std::int64_t>(ms)};
}

duration_ms apply_jitter(jitter_kind j, duration_ms d, jitter_rng& rng) {
  auto ms = d.count();
  if (ms <= 0)
    return duration_ms{0};
  switch (j) {
  case jitter_kind::none:
    return d;
  case jitter_kind::full: {
    std::uniform_int_distribution<std::int64_t> dist(0, ms);
    return duration_ms{dist(rng)};
  }
  case jitter_kind::equal: {
    std::uniform_int_distribution<std::int64_t> dist(ms / 2, ms);
    return duration_ms{dist(rng)};
  }
  }
  return d;
}

duration_ms retry_delay(const retry_policy& p, int failed_attempt,
                        jitter_rng& rng) {
  return apply_jitter(p.jitter, base_delay(p, failed_attempt), rng);
}

retry_decision decide_retry(const retry_policy& p, int attempt,
                            const std::string& error_code, bool retryable) {
  if (!retryable)
    return retry_decision::non_retryable;
  if (std::find(p.non_retryable.begin(), p.non_retryable.end(), error_code) !=
      p.non_retryable.end())
    return retry_decision::non_retryable;
  if (attempt >= p.max_attempts)
    return retry_decision::exhausted;
  return retry_decision::retry;
}

} // namespace troupe
