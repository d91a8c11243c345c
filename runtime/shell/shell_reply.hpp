#pragma once

// Small helpers shared by the shell's command files: building outcomes from
// admin replies, reading fields of JSON results, formatting values.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/shell/shell_session.hpp"

namespace troupe::shell_detail {

using json = nlohmann::json;

shell_outcome failure(const std::string& cmd, const std::string& code,
                      const std::string& message);

/// Turns a failed admin reply into an outcome (permission refusals say
/// which rights the command needs).
shell_outcome from_reply_error(const std::string& cmd, const json& reply);

shell_outcome success(const std::string& cmd, json doc, std::string text);

/// A numeric field as text ("0" if missing).
std::string num(const json& j, const char* key);
std::int64_t int_of(const json& j, const char* key, std::int64_t dflt = 0);
std::string str_of(const json& j, const char* key);

/// HH:MM:SS.mmm in local time.
std::string clock_time(std::int64_t ms);

/// A JSON value on one line, cut to `n` characters.
std::string show_value(const json& v, std::size_t n);

/// A report's progress and message: ` 40% chunk 4 of 10`.
std::string progress_summary(const json& p);

/// The permission refusal among gathered replies, if any.
const json* refusal(const std::vector<json>& replies);

} // namespace troupe::shell_detail
