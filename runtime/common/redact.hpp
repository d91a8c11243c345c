#pragma once

// Credentials never reach a log line, a reply or /readyz.

#include <string>

namespace troupe {

/// Replaces a password in `nats://user:pass@host` (or a token, or a libpq
/// password parameter) by `***`; a comma-separated list URL by URL.
std::string redact_url(const std::string& url);

/// `text` with the password of every URL in `urls` (comma-separated)
/// replaced by "***" (for error messages of libraries that may echo it).
std::string redact_text(std::string text, const std::string& urls);

} // namespace troupe
