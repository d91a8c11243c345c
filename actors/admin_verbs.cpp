#include "actors/admin_verbs.hpp"

#include <algorithm>

#include "messages/admin_failure.hpp"
#include "messages/errc.hpp"
#include "messages/json_guard.hpp"

namespace troupe {

namespace {

/// Admin requests are small flat objects; anything deeper is not one.
constexpr int admin_request_depth = 16;

/// Why `req` is not a well-formed body for a control verb taking `fields`
/// (empty if it is).
std::string unexpected_field(const nlohmann::json& req,
                             const std::set<std::string>& fields) {
  if (req.is_null())
    return {};
  if (!req.is_object())
    return std::string{"request body must be a JSON object, got "} +
           req.type_name();
  for (const auto& [key, value] : req.items())
    if (!fields.count(key))
      return "unknown field '" + key.substr(0, 64) + "' in request body";
  return {};
}

admin_refusal unknown_verb(const admin_verb_table& table, bool control,
                           const std::string& verb) {
  if (table.find(!control, verb))
    return {"unknown_verb",
            "'" + verb + "' is a " + (control ? "read" : "control") + " verb"};
  return {"unknown_verb",
          "unknown " + std::string{control ? "control" : "read"} + " verb '" +
              verb.substr(0, 64) + "' (known: " + table.known(control) + ")"};
}

} // namespace

std::string need_string(const nlohmann::json& req, const char* key) {
  if (!req.is_object() || !req.contains(key) || !req[key].is_string() ||
      req[key].get<std::string>().empty())
    throw admin_failure("invalid_request",
                        std::string{"request needs \""} + key + "\"");
  return req[key].get<std::string>();
}

std::string opt_string(const nlohmann::json& req, const char* key) {
  if (req.is_object() && req.contains(key) && req[key].is_string())
    return req[key].get<std::string>();
  return {};
}

std::int64_t opt_int(const nlohmann::json& req, const char* key,
                     std::int64_t fallback) {
  if (!req.is_object() || !req.contains(key) || req[key].is_null())
    return fallback;
  if (!req[key].is_number_integer())
    throw admin_failure("invalid_request",
                        std::string{"\""} + key + "\" must be an integer");
  return req[key].get<std::int64_t>();
}

int opt_count(const nlohmann::json& req, const char* key, int fallback, int lo,
              int hi) {
  return static_cast<int>(
      std::clamp<std::int64_t>(opt_int(req, key, fallback), lo, hi));
}

void admin_verb_table::add_read(const std::string& name, admin_verb fn) {
  read_[name] = entry{false, {}, std::move(fn)};
}

void admin_verb_table::add_control(const std::string& name,
                                   std::set<std::string> fields,
                                   admin_verb fn) {
  control_[name] = entry{true, std::move(fields), std::move(fn)};
}

void admin_verb_table::add_live_read(const std::string& name) {
  read_[name] = entry{false, {}, {}};
}

void admin_verb_table::add_live_control(const std::string& name,
                                        std::set<std::string> fields) {
  control_[name] = entry{true, std::move(fields), {}};
}

const admin_verb_table::entry*
admin_verb_table::find(bool control, const std::string& name) const {
  const auto& m = control ? control_ : read_;
  auto i = m.find(name);
  return i == m.end() ? nullptr : &i->second;
}

std::string admin_verb_table::known(bool control) const {
  std::string out;
  for (const auto& kv : control ? control_ : read_)
    out += (out.empty() ? "" : ", ") + kv.first;
  return out;
}

std::variant<admin_routed, admin_refusal>
route_admin_call(const admin_verb_table& table, const admin_call& call) {
  if (call.cls != "read" && call.cls != "control")
    return admin_refusal{"unknown_verb",
                         "class must be read or control, got '" +
                             call.cls.substr(0, 64) + "'"};
  bool control = call.cls == "control";
  const auto* verb = table.find(control, call.verb);
  if (!verb)
    return unknown_verb(table, control, call.verb);
  auto req = call.body.empty()
                 ? caf::expected<nlohmann::json>{nlohmann::json{}}
                 : parse_untrusted_json(call.body, admin_request_depth,
                                        "request body");
  if (!req)
    return admin_refusal{to_string(code_of(req.error())),
                         message_of(req.error())};
  if (control)
    if (auto bad = unexpected_field(*req, verb->fields); !bad.empty())
      return admin_refusal{"invalid_request", bad};
  return admin_routed{verb, std::move(*req)};
}

} // namespace troupe
