#include "runtime/shell/shell_reply.hpp"

#include <cstdio>
#include <ctime>

#include "runtime/shell/shell_format.hpp"

namespace troupe::shell_detail {

shell_outcome failure(const std::string& cmd, const std::string& code,
                      const std::string& message) {
  shell_outcome o;
  o.ok = false;
  o.doc = json{{"ok", false},
               {"command", cmd},
               {"error", {{"code", code}, {"message", message}}}};
  o.text = "error: " + printable(message);
  return o;
}

/// Turns a failed admin reply into an outcome.
shell_outcome from_reply_error(const std::string& cmd, const json& reply) {
  std::string code = "failed";
  std::string message = reply.dump();
  if (reply.is_object() && reply.contains("error") &&
      reply["error"].is_object()) {
    code = reply["error"].value("code", code);
    message = reply["error"].value("message", message);
    if (code == "permission_denied")
      message = "permission denied: " + cmd + " needs " +
                reply["error"].value("rights", "read") +
                " rights (NATS: " + message + ")";
  }
  return failure(cmd, code, message);
}

shell_outcome success(const std::string& cmd, json doc, std::string text) {
  shell_outcome o;
  doc["ok"] = true;
  doc["command"] = cmd;
  o.doc = std::move(doc);
  o.text = std::move(text);
  return o;
}

std::string num(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number())
    return "0";
  return std::to_string(j[key].get<std::int64_t>());
}

std::int64_t int_of(const json& j, const char* key, std::int64_t dflt) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number())
    return dflt;
  return j[key].get<std::int64_t>();
}

std::string str_of(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string())
    return {};
  return j[key].get<std::string>();
}

std::string clock_time(std::int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min,
                tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

/// JSON value as one line of text for humans, cut to `n` characters.
std::string show_value(const json& v, std::size_t n) {
  if (v.is_object() && v.value("truncated", false) && v.contains("preview"))
    return ellipsize(str_of(v, "preview"), n) + "  (" + num(v, "bytes") +
           " bytes, truncated)";
  return ellipsize(v.dump(), n);
}

/// The permission refusal among gathered replies, if any.
const json* refusal(const std::vector<json>& replies) {
  for (auto& r : replies)
    if (r.is_object() && r.contains("error") && r["error"].is_object() &&
        r["error"].value("code", "") == "permission_denied")
      return &r;
  return nullptr;
}

} // namespace troupe::shell_detail
