#pragma once

// Process-wide logging set-up (spdlog). Text on a TTY for humans, one JSON
// object per line for machines.

#include <string>
#include <utility>
#include <vector>

#include <spdlog/common.h>

namespace troupe {

/// Configures the default logger. `format` is "text" or "json"; "" picks
/// text. `level` is an spdlog level name; "" picks info. Returns false and
/// leaves logging untouched if either value is unknown.
bool setup_logging(const std::string& format, const std::string& level,
                   std::string* error = nullptr);

/// Escapes a string for inclusion inside a JSON string literal.
std::string json_escape(const std::string& s);

/// Structured fields of a log line (key, value).
using log_fields = std::vector<std::pair<std::string, std::string>>;

/// Logs `msg` with `fields`: in JSON mode each field is a key of the line's
/// object (`"job_id":"..."`), in text mode they follow the message as
/// `key=value`. Used for every job-related line.
void log_with(spdlog::level::level_enum level, const std::string& msg,
              const log_fields& fields);

} // namespace troupe
