#pragma once

// `callback`: a stage that an outside system completes. Its attempt hands
// a token to that system (a request published on `subject`) and waits in
// the store, holding no thread, delivery or actor, until the system sends
// the stage's output or error to troupe.api.v1.complete with the token, or
// until the stage's `timeout` passes (error `callback_timeout`, retryable:
// the usual retry rules apply, and each attempt gets a new token).
// docs/stages.md describes it for users.

#include <cstdint>
#include <memory>
#include <string>

#include <caf/expected.hpp>

#include "actors/stage_kind.hpp"

namespace troupe {

/// How long a callback waits when its stage sets no `timeout`.
constexpr std::int64_t default_callback_wait_ms = 24LL * 3600 * 1000;

caf::expected<std::shared_ptr<const stage_kind>>
make_callback_stage(const stage_config& cfg);

/// A fresh completion token for `job_id`: the id, a '.', and 32 hex digits
/// of randomness (the id lets the API find the job; only the store's hash
/// of the whole token can complete it).
std::string make_callback_token(const std::string& job_id);

/// The job id inside a token, or "" if the token is malformed.
std::string job_of_callback_token(const std::string& token);

} // namespace troupe
