#include "runtime/node/batch_api.hpp"

#include <nlohmann/json.hpp>

#include "messages/errc.hpp"
#include "messages/json_guard.hpp"
#include "runtime/node/status_api.hpp"
#include "runtime/node/submit_api.hpp"

namespace troupe {

namespace {

using json = nlohmann::json;

caf::error bad_request(std::string message) {
  return make_error(errc::invalid_payload, std::move(message));
}

/// A batch id names its callback jobs (`<id>/on_complete`): the rules of a
/// key, shorter.
bool valid_batch_id(const std::string& id) {
  if (id.empty() || id.size() > 200 || id.find('#') != std::string::npos)
    return false;
  for (unsigned char c : id)
    if (c < 0x20 || c == 0x7f)
      return false;
  return true;
}

/// One job of the batch, checked as a submission of its own would be.
caf::expected<batch_job> read_job(const json& entry, std::size_t i,
                                  const batch_context& ctx,
                                  const std::string& tenant) {
  auto where = "jobs[" + std::to_string(i) + "]";
  if (!entry.is_object())
    return bad_request(where + " must be an object like a submission");
  auto routed = route_submission(entry.dump(), ctx.pipelines,
                                 subjects{ctx.prefix}, ctx.limits, tenant);
  if (!routed)
    return make_error(code_of(routed.error()),
                      where + ": " + message_of(routed.error()));
  auto sub = decode_submission(routed->body, ctx.limits);
  if (!sub)
    return make_error(code_of(sub.error()),
                      where + ": " + message_of(sub.error()));
  if (sub->delay_ms > 0 || sub->run_at_ms > 0)
    return bad_request(where + ": a batch's jobs start now (no delay_ms or "
                               "run_at_ms)");
  batch_job out;
  out.job_id = routed->job_id;
  out.pipeline = routed->pipeline;
  out.payload = sub->payload;
  out.priority = sub->priority;
  out.correlation_id = sub->correlation_id;
  return out;
}

/// `on_complete` / `on_success`: {"pipeline", "payload"?}.
caf::expected<json> read_callback(const json& body, const char* name,
                                  const batch_context& ctx) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null())
    return json(nullptr);
  std::string where = name;
  if (!it->is_object())
    return bad_request(where + " must be {\"pipeline\": ..., \"payload\": "
                               "...}");
  for (auto& [key, value] : it->items())
    if (key != "pipeline" && key != "payload")
      return bad_request("unknown field '" + where + "." + key + "'");
  auto p = it->find("pipeline");
  if (p == it->end() || !p->is_string() ||
      !ctx.pipelines.count(p->get<std::string>()))
    return make_error(errc::unknown_pipeline,
                      where + ".pipeline must name a known pipeline");
  return json{{"pipeline", *p}, {"payload", it->value("payload", json())}};
}

caf::error check_fields(const json& body) {
  if (!body.is_object())
    return bad_request("request body must be a JSON object");
  for (auto& [key, value] : body.items())
    if (key != "batch_id" && key != "tenant" && key != "jobs" &&
        key != "on_complete" && key != "on_success")
      return bad_request("unknown field '" + key + "'");
  auto jobs = body.find("jobs");
  if (jobs == body.end() || !jobs->is_array() || jobs->empty() ||
      jobs->size() > max_batch_jobs)
    return bad_request("field 'jobs' must be an array of 1 to " +
                       std::to_string(max_batch_jobs) + " submissions");
  return {};
}

caf::expected<std::string>
read_tenant(const json& body, const std::optional<std::string>& bound) {
  auto t = body.find("tenant");
  std::string tenant;
  if (t != body.end() && !t->is_string())
    return bad_request("field 'tenant' must be a string");
  if (t != body.end())
    tenant = t->get<std::string>();
  if (bound && !tenant.empty() && tenant != *bound)
    return bad_request("field 'tenant' ('" + tenant +
                       "') differs from the subject's tenant ('" + *bound +
                       "')");
  return bound ? *bound : tenant;
}

std::string error_reply(const caf::error& err) {
  return encode_api_error(to_string(code_of(err)), message_of(err));
}

} // namespace

caf::expected<batch_spec>
decode_batch_request(std::string_view text, const batch_context& ctx,
                     const std::optional<std::string>& bound_tenant) {
  if (json_has_nul(text))
    return bad_request("the request holds U+0000, which cannot be stored");
  auto body =
      parse_untrusted_json(text, ctx.limits.max_depth + 2, "request body");
  if (!body)
    return body.error();
  if (auto err = check_fields(*body))
    return err;
  batch_spec out;
  auto tenant = read_tenant(*body, bound_tenant);
  if (!tenant)
    return tenant.error();
  out.tenant = *tenant;
  out.batch_id = body->value("batch_id", json()).is_string()
                     ? (*body)["batch_id"].get<std::string>()
                     : generate_job_id();
  if (body->contains("batch_id") && !(*body)["batch_id"].is_string())
    return bad_request("field 'batch_id' must be a string");
  if (!valid_batch_id(out.batch_id))
    return bad_request("field 'batch_id' must be 1 to 200 characters, "
                       "without '#' or control characters");
  const auto& jobs = (*body)["jobs"];
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    auto job = read_job(jobs[i], i, ctx, out.tenant);
    if (!job)
      return job.error();
    out.jobs.push_back(std::move(*job));
  }
  auto done = read_callback(*body, "on_complete", ctx);
  if (!done)
    return done.error();
  auto success = read_callback(*body, "on_success", ctx);
  if (!success)
    return success.error();
  out.on_complete = std::move(*done);
  out.on_success = std::move(*success);
  out.node = ctx.node_id;
  return out;
}

std::string answer_batch(batch_store& store, std::string_view body,
                         const batch_context& ctx,
                         const std::optional<std::string>& bound_tenant) {
  auto spec = decode_batch_request(body, ctx, bound_tenant);
  if (!spec)
    return error_reply(spec.error());
  if (ctx.known_tenant && !ctx.known_tenant(spec->tenant))
    return encode_api_error("unknown_tenant",
                            "unknown tenant '" + spec->tenant +
                                "' (unknown tenants are not allowed)");
  // Every job of the batch counts against its tenant's rate.
  if (auto wait = ctx.admit ? ctx.admit(spec->tenant,
                                        static_cast<int>(spec->jobs.size()))
                            : 0;
      wait > 0)
    return json{{"ok", false},
                {"error",
                 {{"code", "rate_limited"},
                  {"message", "tenant '" + spec->tenant +
                                  "' is over its rate; retry in " +
                                  std::to_string(wait) + " ms"},
                  {"retry_after_ms", wait}}}}
        .dump();
  auto made = store.create(*spec);
  if (!made)
    return encode_api_error("unavailable", "batch not accepted, retry: " +
                                               describe(made.error()));
  if (!made->conflict.empty())
    return encode_api_error("conflict", "key '" + made->conflict +
                                            "' names an existing job; "
                                            "nothing of the batch was created");
  json ids = json::array();
  for (const auto& j : spec->jobs)
    ids.push_back(j.job_id);
  return json{{"ok", true},
              {"batch_id", spec->batch_id},
              {"job_ids", std::move(ids)},
              {"duplicate", !made->created}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string answer_batch_status(batch_store& store, std::string_view text,
                                const std::optional<std::string>& bound) {
  auto body = parse_untrusted_json(text, 4, "request body");
  if (!body)
    return error_reply(body.error());
  if (!body->is_object() || !body->contains("batch_id") ||
      !(*body)["batch_id"].is_string())
    return encode_api_error("invalid_payload",
                            "request body must be {\"batch_id\": \"...\"}");
  for (auto& [key, value] : body->items())
    if (key != "batch_id" && key != "tenant")
      return encode_api_error("invalid_payload", "unknown field '" + key + "'");
  auto tenant = read_tenant(*body, bound);
  if (!tenant)
    return error_reply(tenant.error());
  auto id = (*body)["batch_id"].get<std::string>();
  auto st = store.status(id, &*tenant);
  if (!st)
    return encode_api_error("unavailable",
                            "cannot read the batch: " + describe(st.error()));
  // Another tenant's batch is answered like one that does not exist.
  if (!*st)
    return encode_api_error("not_found", "no batch '" + id + "'");
  return json{{"ok", true}, {"batch", std::move(**st)}}.dump(
      -1, ' ', false, json::error_handler_t::replace);
}

} // namespace troupe
