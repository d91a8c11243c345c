#pragma once

// `<prefix>.api.v1.complete` (and `<prefix>.api.v1.tenant.<t>.complete`):
// an outside system completes a callback stage (actors/callback_stage.hpp)
// with the token it was given, sending the stage's output or an error
// (docs/wire-format.md). The token is the capability; on a tenant-bound
// subject the job must also be that tenant's. Served by the status API's
// subscription and workers (runtime/node/status_api.hpp).

#include <optional>
#include <string>
#include <string_view>

#include <caf/expected.hpp>

namespace troupe {

class callback_store;

/// A decoded completion.
struct complete_request {
  std::string token;
  /// The job the token names.
  std::string job_id;
  /// What the callback record stores: {"ok": true, "output": ...} or
  /// {"ok": false, "code", "message", "retryable"} (JSON text).
  std::string completion;
};

/// Deepest `output` a completion may carry (the payload limit's default).
constexpr int max_completion_depth = 64;

/// Decodes `{"token", "output"?}` or `{"token", "error": {"code",
/// "message"?, "retryable"?}}`. Unknown fields, both or a malformed token,
/// an error code that is not a short identifier, and U+0000 anywhere are
/// refused.
caf::expected<complete_request> decode_complete_request(std::string_view body);

/// Answers one completion request: the reply body.
std::string answer_complete(callback_store& store, std::string_view body,
                            const std::optional<std::string>& tenant);

} // namespace troupe
