#include "runtime/node/callback_api.hpp"

#include <nlohmann/json.hpp>

#include "actors/callback_stage.hpp"
#include "messages/errc.hpp"
#include "messages/json_guard.hpp"
#include "runtime/node/status_api.hpp"
#include "runtime/pg/callback_store.hpp"

namespace troupe {

namespace {

using json = nlohmann::json;

caf::error bad_request(std::string message) {
  return make_error(errc::invalid_payload, std::move(message));
}

/// Error codes name a kind of failure, as troupe's own do: short, plain.
bool plain_code(const std::string& code) {
  if (code.empty() || code.size() > 64)
    return false;
  for (unsigned char c : code)
    if (!(std::isalnum(c) || c == '_' || c == '.' || c == '-'))
      return false;
  return true;
}

caf::expected<json> error_completion(const json& e) {
  if (!e.is_object())
    return bad_request("field 'error' must be an object");
  for (auto& [key, value] : e.items())
    if (key != "code" && key != "message" && key != "retryable")
      return bad_request("unknown field 'error." + key + "'");
  auto code = e.find("code");
  if (code == e.end() || !code->is_string() ||
      !plain_code(code->get<std::string>()))
    return bad_request("field 'error.code' must be 1 to 64 letters, digits, "
                       "'_', '.' or '-'");
  json out{
      {"ok", false}, {"code", *code}, {"message", ""}, {"retryable", true}};
  if (auto m = e.find("message"); m != e.end()) {
    if (!m->is_string() || m->get<std::string>().size() > 2048)
      return bad_request("field 'error.message' must be a string of at most "
                         "2048 bytes");
    out["message"] = *m;
  }
  if (auto r = e.find("retryable"); r != e.end()) {
    if (!r->is_boolean())
      return bad_request("field 'error.retryable' must be true or false");
    out["retryable"] = *r;
  }
  return out;
}

} // namespace

caf::expected<complete_request> decode_complete_request(std::string_view body) {
  if (json_has_nul(body))
    return bad_request("the request holds U+0000, which cannot be stored");
  auto j = parse_untrusted_json(body, max_completion_depth + 1, "request body");
  if (!j)
    return j.error();
  if (!j->is_object())
    return bad_request("request body must be a JSON object");
  for (auto& [key, value] : j->items())
    if (key != "token" && key != "output" && key != "error")
      return bad_request("unknown field '" + key + "'");
  complete_request out;
  auto t = j->find("token");
  if (t == j->end() || !t->is_string() || t->get<std::string>().size() > 600)
    return bad_request("field 'token' must be the string the callback "
                       "request gave");
  out.token = t->get<std::string>();
  out.job_id = job_of_callback_token(out.token);
  if (out.job_id.empty())
    return bad_request("field 'token' is not a callback token");
  auto e = j->find("error");
  if (e != j->end() && j->contains("output"))
    return bad_request("a completion carries 'output' or 'error', not both");
  if (e == j->end()) {
    auto o = j->find("output");
    out.completion =
        json{{"ok", true}, {"output", o == j->end() ? json(nullptr) : *o}}
            .dump();
    return out;
  }
  auto c = error_completion(*e);
  if (!c)
    return c.error();
  out.completion = c->dump();
  return out;
}

std::string answer_complete(callback_store& store, std::string_view body,
                            const std::optional<std::string>& tenant) {
  auto req = decode_complete_request(body);
  if (!req) {
    auto msg = describe(req.error());
    if (auto pos = msg.find(": "); pos != std::string::npos)
      msg = msg.substr(pos + 2); // describe() prefixes the code
    return encode_api_error(to_string(code_of(req.error())), msg);
  }
  auto r = store.complete(req->job_id, req->token, req->completion,
                          tenant ? &*tenant : nullptr);
  if (!r)
    return encode_api_error("unavailable",
                            "cannot complete: " + describe(r.error()));
  switch (*r) {
  case completion_result::completed:
  case completion_result::duplicate:
    return json{{"ok", true},
                {"job_id", req->job_id},
                {"duplicate", *r == completion_result::duplicate}}
        .dump(-1, ' ', false, json::error_handler_t::replace);
  case completion_result::not_found:
    return encode_api_error("not_found", "no callback waits for this token");
  case completion_result::too_late:
    break;
  }
  return encode_api_error("conflict",
                          "the callback no longer waits (its deadline passed "
                          "or the job was cancelled)");
}

} // namespace troupe
