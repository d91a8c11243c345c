#pragma once

// Built-in stage kinds that never block: `noop`, `sleep` (timer-based) and
// `fault` (deterministic failure injection for tests, demos and benchmarks).

#include <memory>

#include <caf/expected.hpp>

#include "actors/stage_kind.hpp"

namespace troupe {

/// `noop`: succeeds at once with `{}`.
caf::expected<std::shared_ptr<const stage_kind>>
make_noop_stage(const stage_config& cfg);

/// `sleep`: succeeds with `{}` after `duration` (a CAF timer, no thread).
caf::expected<std::shared_ptr<const stage_kind>>
make_sleep_stage(const stage_config& cfg);

/// `fault`: `fail_first = N` fails attempts 1..N of every job (retryable),
/// `probability = p` fails an attempt with probability p (decided by a hash
/// of job id, stage and attempt, so runs are reproducible), `throw = true`
/// throws instead of returning an error, `permanent = true` makes failures
/// non-retryable, `duration` delays the outcome, `poison_key = "k"` fails
/// permanently (code bad_input) every job whose payload has `k: true`.
caf::expected<std::shared_ptr<const stage_kind>>
make_fault_stage(const stage_config& cfg);

} // namespace troupe
