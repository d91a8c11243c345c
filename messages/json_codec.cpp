#include "messages/json_codec.hpp"
#include "messages/json_guard.hpp"
#include "messages/json_text.hpp"
#include "messages/trace_context.hpp"

#include <initializer_list>

#include <nlohmann/json.hpp>

namespace troupe {

namespace {

using json = nlohmann::json;

caf::error invalid(std::string msg) {
  return make_error(errc::invalid_payload, std::move(msg));
}

// Reads an optional string field; reports a type error with the field name.
caf::error read_string(const json& obj, const char* key, std::string& out,
                       std::size_t max_len) {
  auto i = obj.find(key);
  if (i == obj.end() || i->is_null())
    return caf::none;
  if (!i->is_string())
    return invalid(std::string{"field '"} + key + "' must be a string, got " +
                   i->type_name());
  out = i->get<std::string>();
  if (out.size() > max_len)
    return make_error(errc::key_too_long,
                      std::string{"field '"} + key + "' is longer than " +
                          std::to_string(max_len) + " bytes");
  return caf::none;
}

caf::error read_int(const json& obj, const char* key, std::int64_t& out,
                    std::int64_t lo, std::int64_t hi) {
  auto i = obj.find(key);
  if (i == obj.end() || i->is_null())
    return caf::none;
  if (!i->is_number_integer())
    return invalid(std::string{"field '"} + key + "' must be an integer, got " +
                   i->type_name());
  auto v = i->get<std::int64_t>();
  if (v < lo || v > hi)
    return invalid(std::string{"field '"} + key + "' must be in [" +
                   std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                   std::to_string(v));
  out = v;
  return caf::none;
}

// nlohmann converts a float to an integer field with a plain cast, which is
// undefined behaviour out of range ({"time_ms": 1e300}): integer fields take
// integers only. Names the first of `keys` in `obj` holding a float.
caf::error reject_float_integers(const json& obj,
                                 std::initializer_list<const char*> keys,
                                 const char* what) {
  for (auto key : keys)
    if (auto i = obj.find(key); i != obj.end() && i->is_number_float())
      return invalid(std::string{what} + " field '" + key +
                     "' must be an integer");
  return caf::none;
}

} // namespace

caf::expected<std::string> normalize_json(std::string_view text,
                                          int max_depth) {
  auto j = parse_untrusted_json(text, max_depth, "JSON");
  if (!j)
    return std::move(j.error());
  if (json_has_nul(text))
    return make_error(errc::invalid_payload,
                      "JSON contains a NUL character (\\u0000), which "
                      "PostgreSQL cannot store");
  return j->dump();
}

namespace {

/// The W3C trace context fields of a submission (docs/wire-format.md).
caf::error read_trace(const json& j, submission& s) {
  if (auto err = read_string(j, "traceparent", s.traceparent, 64))
    return err;
  if (!s.traceparent.empty() && !valid_traceparent(s.traceparent))
    return invalid("field 'traceparent' is not a W3C traceparent "
                   "(00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>)");
  if (auto err = read_string(j, "tracestate", s.tracestate, 512))
    return err;
  if (!valid_tracestate(s.tracestate))
    return invalid("field 'tracestate' must be printable ASCII");
  if (s.traceparent.empty() && !s.tracestate.empty())
    return invalid("field 'tracestate' needs a 'traceparent'");
  return caf::none;
}

} // namespace

caf::expected<submission> decode_submission(std::string_view body,
                                            const input_limits& limits) {
  // Size first: never parse something we would reject anyway.
  if (static_cast<std::int64_t>(body.size()) > limits.max_payload_bytes)
    return make_error(errc::payload_too_large,
                      "body is " + std::to_string(body.size()) +
                          " bytes, limit is " +
                          std::to_string(limits.max_payload_bytes));
  // Depth on the bytes, before a tree exists (json_guard.hpp); the body
  // object is one level above the payload.
  if (json_nesting(body, limits.max_depth + 1) > limits.max_depth + 1)
    return make_error(errc::nesting_too_deep,
                      "payload nested deeper than " +
                          std::to_string(limits.max_depth) + " levels");
  if (auto nul = body.find('\0'); nul != std::string_view::npos)
    return invalid("body holds a NUL byte at offset " + std::to_string(nul));
  json j;
  try {
    j = json::parse(body.begin(), body.end());
  } catch (const json::exception& e) {
    // Not only parse_error: a number beyond double's range (1e400) throws
    // out_of_range.
    return invalid(std::string{"malformed JSON: "} + e.what());
  }
  if (!j.is_object())
    return invalid(std::string{"body must be a JSON object, got "} +
                   j.type_name());
  // jsonb cannot hold U+0000: a job carrying it could never be stored, so
  // it is refused here rather than failing every write later.
  if (json_has_nul(body))
    return invalid("body contains a NUL character (\\u0000) in a string; "
                   "PostgreSQL cannot store it");
  for (const auto& [k, v] : j.items()) {
    static constexpr const char* known[] = {
        "payload",     "tenant",    "correlation_id", "priority",
        "delay_ms",    "run_at_ms", "pipeline",       "key",
        "traceparent", "tracestate"};
    bool ok = false;
    for (auto name : known)
      ok = ok || k == name;
    if (!ok)
      return invalid("unknown field '" + k + "'");
  }
  submission s;
  auto p = j.find("payload");
  if (p == j.end())
    return invalid("missing field 'payload'");
  s.payload = p->dump();
  if (auto err = read_string(j, "pipeline", s.pipeline, limits.max_key_length))
    return err;
  if (auto err = read_string(j, "key", s.key, limits.max_key_length))
    return err;
  if (auto err = read_string(j, "tenant", s.tenant, limits.max_key_length))
    return err;
  if (auto err = read_string(j, "correlation_id", s.correlation_id,
                             limits.max_key_length))
    return err;
  std::int64_t prio = 0;
  if (auto err = read_int(j, "priority", prio, -1000, 1000))
    return err;
  s.priority = static_cast<std::int32_t>(prio);
  if (auto err = read_int(j, "delay_ms", s.delay_ms, 0,
                          std::int64_t{30} * 24 * 3600 * 1000))
    return err;
  // Up to the year 3000: later is a unit mistake (seconds for ms, say).
  if (auto err = read_int(j, "run_at_ms", s.run_at_ms, 0,
                          std::int64_t{32503680000000}))
    return err;
  if (auto err = read_trace(j, s))
    return err;
  return s;
}

std::string encode_submission(const submission& s) {
  json j = json::object();
  if (!s.pipeline.empty())
    j["pipeline"] = s.pipeline;
  if (!s.key.empty())
    j["key"] = s.key;
  j["payload"] = json::parse(s.payload, nullptr, false);
  if (!s.tenant.empty())
    j["tenant"] = s.tenant;
  if (!s.correlation_id.empty())
    j["correlation_id"] = s.correlation_id;
  if (s.priority != 0)
    j["priority"] = s.priority;
  if (s.delay_ms != 0)
    j["delay_ms"] = s.delay_ms;
  if (s.run_at_ms != 0)
    j["run_at_ms"] = s.run_at_ms;
  if (!s.traceparent.empty())
    j["traceparent"] = s.traceparent;
  if (!s.tracestate.empty())
    j["tracestate"] = s.tracestate;
  return j.dump();
}

std::string encode_submit_ok(std::string_view job_id) {
  return json{{"ok", true}, {"job_id", job_id}}.dump();
}

std::string encode_submit_duplicate(std::string_view job_id) {
  return json{{"ok", true}, {"job_id", job_id}, {"duplicate", true}}.dump();
}

std::string encode_submit_error(std::string_view code,
                                std::string_view message) {
  return json{{"ok", false}, {"error", {{"code", code}, {"message", message}}}}
      .dump();
}

std::string encode_event(const job_event& ev) {
  // Written directly (this runs for every event of every job); keys in
  // sorted order, as nlohmann's std::map-backed objects print them.
  std::string out;
  out.reserve(256);
  json_object_writer w{out};
  if (ev.attempt > 0)
    w.num("attempt", ev.attempt);
  if (ev.children >= 0)
    w.num("children", ev.children);
  if (!ev.correlation_id.empty())
    w.str("correlation_id", ev.correlation_id);
  if (ev.deadline_ms >= 0)
    w.num("deadline_ms", ev.deadline_ms);
  if (ev.duration_ms >= 0)
    w.num("duration_ms", ev.duration_ms);
  if (!ev.error.empty() || !ev.error_code.empty()) {
    auto e = w.object("error");
    e.str("code", ev.error_code).str("message", ev.error);
    e.close();
  }
  w.str("job_id", ev.job_id);
  if (ev.latency_ms >= 0)
    w.num("latency_ms", ev.latency_ms);
  if (ev.next_retry_ms >= 0)
    w.num("next_retry_ms", ev.next_retry_ms);
  w.str("node", ev.node);
  if (!ev.parent_span_id.empty())
    w.str("parent_span_id", ev.parent_span_id);
  w.str("pipeline", ev.pipeline);
  if (!ev.progress.empty())
    w.raw("progress", ev.progress);
  if (!ev.result.empty())
    w.raw("result", ev.result);
  if (ev.result_bytes >= 0) {
    w.num("result_bytes", ev.result_bytes);
    w.boolean("result_omitted", true);
  }
  if (ev.stage_index >= 0) {
    w.str("stage", ev.stage);
    w.num("stage_index", ev.stage_index);
  }
  if (!ev.span_id.empty())
    w.str("span_id", ev.span_id);
  if (!ev.tenant.empty())
    w.str("tenant", ev.tenant);
  w.num("time_ms", ev.time_ms);
  if (!ev.trace_id.empty())
    w.str("trace_id", ev.trace_id);
  w.str("type", ev.type);
  w.close();
  return out;
}

std::string encode_logged_event(const job_event& ev) {
  if (ev.result.empty())
    return encode_event(ev);
  auto copy = ev;
  copy.result.clear();
  return encode_event(copy);
}

caf::expected<job_event> decode_event(std::string_view text) {
  if (json_nesting(text, internal_json_depth) > internal_json_depth)
    return invalid("event is nested too deeply");
  auto j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return invalid("event is not a JSON object");
  if (auto err = reject_float_integers(
          j,
          {"time_ms", "stage_index", "attempt", "next_retry_ms", "duration_ms",
           "latency_ms", "result_bytes", "deadline_ms", "children"},
          "event"))
    return err;
  job_event ev;
  try {
    ev.type = j.at("type").get<std::string>();
    ev.job_id = j.at("job_id").get<std::string>();
    ev.pipeline = j.value("pipeline", "");
    ev.node = j.value("node", "");
    ev.time_ms = j.value("time_ms", std::int64_t{0});
    ev.stage = j.value("stage", "");
    ev.stage_index = j.value("stage_index", -1);
    ev.attempt = j.value("attempt", 0);
    if (auto e = j.find("error"); e != j.end() && e->is_object()) {
      ev.error_code = e->value("code", "");
      ev.error = e->value("message", "");
    }
    ev.next_retry_ms = j.value("next_retry_ms", std::int64_t{-1});
    ev.duration_ms = j.value("duration_ms", std::int64_t{-1});
    ev.latency_ms = j.value("latency_ms", std::int64_t{-1});
    ev.correlation_id = j.value("correlation_id", "");
    ev.tenant = j.value("tenant", "");
    if (auto r = j.find("result"); r != j.end())
      ev.result = r->dump();
    ev.result_bytes = j.value("result_bytes", std::int64_t{-1});
    ev.deadline_ms = j.value("deadline_ms", std::int64_t{-1});
    ev.children = j.value("children", std::int64_t{-1});
    ev.trace_id = j.value("trace_id", "");
    ev.span_id = j.value("span_id", "");
    ev.parent_span_id = j.value("parent_span_id", "");
    if (auto p = j.find("progress"); p != j.end())
      ev.progress = p->dump();
  } catch (const json::exception& e) {
    return invalid(std::string{"malformed event: "} + e.what());
  }
  return ev;
}

json to_json(const attempt_record& a) {
  json j{{"stage_index", a.stage_index},
         {"stage", a.stage},
         {"attempt", a.attempt},
         {"life", a.life},
         {"started_at_ms", a.started_at_ms},
         {"duration_ms", a.duration_ms},
         {"node", a.node},
         {"ok", a.ok}};
  if (!a.ok)
    j["error"] = {{"code", a.error_code}, {"message", a.error_message}};
  return j;
}

caf::expected<attempt_record> attempt_from_json(const json& j) {
  if (auto err = reject_float_integers(
          j, {"stage_index", "attempt", "life", "started_at_ms", "duration_ms"},
          "attempt record"))
    return err;
  attempt_record a;
  try {
    a.stage_index = j.at("stage_index").get<std::int32_t>();
    a.stage = j.at("stage").get<std::string>();
    a.attempt = j.at("attempt").get<std::int32_t>();
    a.life = j.value("life", 1);
    a.started_at_ms = j.value("started_at_ms", std::int64_t{0});
    a.duration_ms = j.value("duration_ms", std::int64_t{0});
    a.node = j.value("node", "");
    a.ok = j.value("ok", false);
    if (auto e = j.find("error"); e != j.end() && e->is_object()) {
      a.error_code = e->value("code", "");
      a.error_message = e->value("message", "");
    }
  } catch (const json::exception& e) {
    return invalid(std::string{"malformed attempt record: "} + e.what());
  }
  return a;
}

json to_json(const checkpoint& c) {
  return json{{"stage_index", c.stage_index},
              {"stage", c.stage},
              {"output", json::parse(c.output, nullptr, false)},
              {"attempts", c.attempts},
              {"duration_ms", c.duration_ms},
              {"finished_at_ms", c.finished_at_ms}};
}

} // namespace troupe
