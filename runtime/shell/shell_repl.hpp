#pragma once

#include <string>

#include "runtime/shell/shell_session.hpp"

namespace troupe {

/// Reads commands from the terminal until `quit` or Ctrl-D. Returns 0 if
/// every command succeeded, else 1.
int run_repl(shell_session& session, const std::string& banner);

} // namespace troupe
