#pragma once

// Process-wide logging set-up (spdlog). Text on a TTY for humans, one JSON
// object per line for machines.

#include <string>

namespace troupe {

/// Configures the default logger. `format` is "text" or "json"; "" picks
/// text. `level` is an spdlog level name; "" picks info. Returns false and
/// leaves logging untouched if either value is unknown.
bool setup_logging(const std::string& format, const std::string& level,
                   std::string* error = nullptr);

/// Escapes a string for inclusion inside a JSON string literal.
std::string json_escape(const std::string& s);

} // namespace troupe
