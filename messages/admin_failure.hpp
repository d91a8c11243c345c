#pragma once

// The error an admin verb answers with (actors/admin_actor.hpp turns it
// into {"ok": false, "error": {"code", "message"}}).

#include <stdexcept>
#include <string>

namespace troupe {

/// A verb's failure with a machine-readable code for the client
/// (`unknown_job`, `invalid_request`, `conflict`, `unavailable`, ...).
struct admin_failure : std::runtime_error {
  admin_failure(std::string code, const std::string& message)
      : std::runtime_error(message), code(std::move(code)) {}
  std::string code;
};

} // namespace troupe
