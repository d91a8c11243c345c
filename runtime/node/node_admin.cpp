#include "runtime/node/node_admin.hpp"
#include "messages/event_type.hpp"

#include <algorithm>
#include <chrono>
#include <thread>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "config/config_loader.hpp"
#include "messages/admin_failure.hpp"
#include "messages/errc.hpp"
#include "messages/json_codec.hpp"
#include "runtime/client/admin_client.hpp"

namespace troupe {

using json = nlohmann::json;
using namespace std::chrono_literals;

// -- verbs
// ---------------------------------------------------------------------

namespace {

using ctx_ptr = std::shared_ptr<node_admin_context>;

std::string admin_subject(const ctx_ptr& ctx, const std::string& rest) {
  return ctx->prefix + ".admin." + rest;
}

std::size_t expected_nodes(const ctx_ptr& ctx) {
  return ctx->alive_nodes ? ctx->alive_nodes() : 0;
}

/// Fans `verb` out to every node and returns the successful results.
/// With `until_found`, stops at the first node that reports `found` (the
/// holder of a job) rather than trusting the membership count, which lags
/// right after nodes start.
std::vector<json> fan_out(const ctx_ptr& ctx, const std::string& verb,
                          const json& body, bool until_found = false) {
  std::function<bool(const json&)> enough;
  if (until_found)
    enough = [](const json& r) {
      return r.value("ok", false) && r["result"].value("found", false);
    };
  auto replies = admin_gather(
      *ctx->nats, admin_subject(ctx, "all.control." + verb), body.dump(),
      3000ms, until_found ? 0 : expected_nodes(ctx), enough);
  std::vector<json> out;
  for (auto& r : replies)
    if (r.value("ok", false))
      out.push_back(
          json{{"node", r.value("node", "")}, {"result", r["result"]}});
  return out;
}

/// Publishes a new life of a job to the stream. The message id carries the
/// life, so the duplicate window does not swallow it; the job id travels in
/// the Troupe-Job-Id header.
void republish(const ctx_ptr& ctx, const replay_ticket& t) {
  submission s;
  s.payload = t.payload;
  s.tenant = t.tenant;
  s.correlation_id = t.correlation_id;
  s.priority = t.priority;
  auto r = ctx->nats->js_publish_job(
      ctx->prefix + ".jobs." + t.pipeline, encode_submission(s),
      t.job_id + "#" + std::to_string(t.life), t.job_id);
  // The new life is in the store already: if its message cannot go out
  // now, the schedulers publish it (chaos seed 1: 16 replays left queued
  // with no message while a nats-server was silent).
  if (!r && ctx->store->hand_to_scheduler(t.job_id, t.life)) {
    spdlog::warn("replay of '{}' (life {}) not published ({}); the "
                 "scheduler publishes it",
                 t.job_id, t.life, describe(r.error()));
    return;
  }
  if (r) {
    ctx->store->published_as(t.job_id, t.life, *r);
    return;
  }
  throw admin_failure("unavailable",
                      "job '" + t.job_id + "' is queued for life " +
                          std::to_string(t.life) +
                          " but could not be published (" +
                          describe(r.error()) + "); run the command again");
}

std::optional<std::int32_t> resolve_stage(const ctx_ptr& ctx,
                                          const std::string& job_id,
                                          const std::string& pipeline,
                                          const json& req) {
  if (!req.is_object() || !req.contains("from_stage") ||
      req["from_stage"].is_null())
    return std::nullopt;
  const auto& v = req["from_stage"];
  if (v.is_number_integer())
    return v.get<std::int32_t>();
  if (!v.is_string())
    throw admin_failure("invalid_request",
                        "from_stage must be a stage name or index");
  auto name = v.get<std::string>();
  std::vector<std::string> names;
  if (auto i = ctx->pipelines.find(pipeline); i != ctx->pipelines.end())
    for (auto& sc : i->second->config.stages)
      names.push_back(sc.name);
  else
    names = ctx->store->stage_names(job_id);
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == name)
      return static_cast<std::int32_t>(i);
  std::string known;
  for (auto& n : names)
    known += (known.empty() ? "" : ", ") + n;
  throw admin_failure("invalid_request", "pipeline '" + pipeline +
                                             "' has no stage '" + name +
                                             "' (stages: " + known + ")");
}

json ticket_json(const replay_ticket& t) {
  return json{{"job_id", t.job_id}, {"pipeline", t.pipeline},
              {"life", t.life},     {"from_stage", t.from_stage},
              {"state", "queued"},  {"republished_only", t.republish_only}};
}

/// Waits (bounded) until the store shows the job in a terminal state.
std::string await_terminal(const ctx_ptr& ctx, const std::string& job_id) {
  std::string state;
  for (int i = 0; i < 60; ++i) {
    state = ctx->store->state_of(job_id).first;
    job_state s;
    if (from_string(state, s) && is_terminal(s))
      break;
    std::this_thread::sleep_for(50ms);
  }
  return state;
}

/// A job of a pipeline whose stages run in parallel shows its graph: each
/// stage with the stages it comes after (config/stage_graph.hpp).
void add_graph(const ctx_ptr& ctx, json& job) {
  auto it = ctx->pipelines.find(job["job"].value("pipeline", ""));
  if (it == ctx->pipelines.end() || !it->second->graph.parallel)
    return;
  const auto& def = *it->second;
  auto graph = json::array();
  for (std::size_t i = 0; i < def.config.stages.size(); ++i) {
    auto after = json::array();
    for (auto n : def.graph.needs[i])
      after.push_back(def.config.stages[n].name);
    graph.push_back(json{{"index", i},
                         {"name", def.config.stages[i].name},
                         {"after", std::move(after)}});
  }
  job["graph"] = std::move(graph);
}

void add_read_verbs(admin_verb_table& bridge, const ctx_ptr& ctx) {
  bridge.add_read("jobs", [ctx](const json& req) {
    job_filter f;
    f.pipeline = opt_string(req, "pipeline");
    f.state = opt_string(req, "state");
    f.tenant = opt_string(req, "tenant");
    f.after = opt_string(req, "after");
    f.parent = opt_string(req, "parent");
    f.batch = opt_string(req, "batch");
    f.error_code = opt_string(req, "error");
    f.text = opt_string(req, "q");
    if (req.is_object()) {
      f.since_ms = opt_int(req, "since_ms", 0);
      f.limit = opt_count(req, "limit", 50, 1, 100000);
    }
    return ctx->store->list_jobs(f);
  });
  bridge.add_read("job", [ctx](const json& req) {
    bool full = req.is_object() && req.value("full", false);
    auto out = ctx->store->get_job(need_string(req, "job_id"), full);
    add_graph(ctx, out);
    return out;
  });
  bridge.add_read("batch", [ctx](const json& req) {
    auto id = need_string(req, "batch_id");
    auto st = ctx->batches->status(id, nullptr);
    if (!st || !*st)
      throw admin_failure(st ? "unknown_batch" : "unavailable",
                          st ? "unknown batch '" + id + "'"
                             : describe(st.error()));
    return std::move(**st);
  });
  bridge.add_read("dlq", [ctx](const json& req) {
    int limit = opt_count(req, "limit", 100, 1, 100000);
    return ctx->store->list_dead_letters(opt_string(req, "pipeline"), limit);
  });
  bridge.add_read("retention",
                  [ctx](const json&) { return ctx->pruner->preview(); });
  bridge.add_read("counts",
                  [ctx](const json&) { return ctx->store->pipeline_counts(); });
}

void add_local_verbs(admin_verb_table& bridge, const ctx_ptr& ctx) {
  // The per-node halves of cancel and retry are the admin actor's own
  // (actors/admin_actor.hpp); refreshing the pause set reads the store.
  bridge.add_control("refresh_controls", {}, [ctx](const json&) {
    if (!ctx->controls->refresh())
      throw admin_failure("unavailable", "PostgreSQL is unreachable");
    if (ctx->apply_controls)
      ctx->apply_controls();
    return json{{"paused", ctx->controls->paused()}};
  });
}

/// No node holds the job (still in the stream, or its node died): decided
/// in the store, whose epoch bump fences out anything still running it.
json cancel_in_store(const ctx_ptr& ctx, const std::string& id,
                     const json& req) {
  auto out = ctx->store->cancel(id, opt_string(req, "pipeline"), ctx->node_id);
  job_event ev;
  ev.type = std::string{to_string(event_type::job_cancelled)};
  ev.job_id = id;
  ev.pipeline = out.value("pipeline", "");
  ev.node = ctx->node_id;
  ev.error = "cancelled by an operator";
  ev.time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  ctx->nats->publish(subjects{ctx->prefix}.events(ev.pipeline, id),
                     encode_event(ev));
  out["by_node"] = nullptr;
  return out;
}

json cancel_job(const ctx_ptr& ctx, const json& req) {
  auto id = need_string(req, "job_id");
  auto [state, pipeline] = ctx->store->state_of(id);
  job_state s;
  if (!state.empty() && from_string(state, s) && is_terminal(s))
    throw admin_failure("conflict", "job '" + id + "' is already " + state);
  // Wherever it is held (running, waiting for a retry, or queued for a
  // slot on some node), its job actor cancels it and commits the state.
  for (auto& r : fan_out(ctx, "cancel_local", {{"job_id", id}}, true))
    if (r["result"].value("found", false)) {
      auto now = await_terminal(ctx, id);
      return json{{"job_id", id},
                  {"pipeline", pipeline},
                  {"state", now},
                  {"was", state},
                  {"by_node", r["node"]}};
    }
  return cancel_in_store(ctx, id, req);
}

/// A job waiting for its time runs now: in the store (the schedulers
/// publish it at once), or on the node that holds its short retry wait.
json retry_now(const ctx_ptr& ctx, const std::string& id,
               const std::string& pipeline) {
  if (ctx->store->run_now(id))
    return json{{"job_id", id},
                {"pipeline", pipeline},
                {"action", "retry_now"},
                {"by_node", nullptr}};
  for (auto& r : fan_out(ctx, "retry_local", {{"job_id", id}}, true))
    if (r["result"].value("fired", false))
      return json{{"job_id", id},
                  {"pipeline", pipeline},
                  {"action", "retry_now"},
                  {"by_node", r["node"]}};
  throw admin_failure("conflict",
                      "job '" + id +
                          "' waits for a retry but no node holds it; it "
                          "resumes when its message is redelivered");
}

json retry_job(const ctx_ptr& ctx, const json& req) {
  auto id = need_string(req, "job_id");
  auto [state, pipeline] = ctx->store->state_of(id);
  if (state.empty())
    throw admin_failure("unknown_job", "unknown job '" + id + "' — try: jobs");
  auto from = resolve_stage(ctx, id, pipeline, req);
  if ((state == "retrying" || state == "scheduled") && !from)
    return retry_now(ctx, id, pipeline);
  if (state == "running" || state == "retrying" || state == "waiting")
    throw admin_failure("conflict", "job '" + id + "' is " + state +
                                        "; cancel it first — try: cancel " +
                                        id);
  auto t = ctx->store->start_new_life(
      id, from, {"dead_lettered", "cancelled", "succeeded"}, ctx->node_id);
  republish(ctx, t);
  auto out = ticket_json(t);
  out["action"] = "new_life";
  return out;
}

json replay_all(const ctx_ptr& ctx, const json& req) {
  auto pipeline = opt_string(req, "pipeline");
  int limit = opt_count(req, "limit", 10000, 1, 1000000);
  json out{{"replayed", 0}, {"failed", json::array()}, {"pipeline", pipeline}};
  for (auto& id : ctx->store->dead_letter_ids(pipeline, limit)) {
    try {
      auto t = ctx->store->start_new_life(id, std::nullopt, {"dead_lettered"},
                                          ctx->node_id);
      republish(ctx, t);
      out["replayed"] = out["replayed"].get<int>() + 1;
    } catch (const std::exception& e) {
      out["failed"].push_back({{"job_id", id}, {"error", e.what()}});
    }
  }
  return out;
}

json replay_job(const ctx_ptr& ctx, const json& req) {
  if (req.is_object() && req.value("all", false))
    return replay_all(ctx, req);
  auto id = need_string(req, "job_id");
  auto [state, pipeline] = ctx->store->state_of(id);
  auto from = resolve_stage(ctx, id, pipeline, req);
  auto t =
      ctx->store->start_new_life(id, from, {"dead_lettered"}, ctx->node_id);
  republish(ctx, t);
  return ticket_json(t);
}

/// Pauses or resumes a pipeline cluster-wide: the store says so, every
/// node applies it now (and converges by polling if it missed this).
json set_paused(const ctx_ptr& ctx, const json& req, bool pause) {
  auto p = need_string(req, "pipeline");
  if (!is_subject_token(p))
    throw admin_failure("invalid_request",
                        "'" + p + "' is not a valid pipeline name");
  ctx->store->set_paused(p, pause, ctx->node_id);
  json applied = json::array();
  for (auto& r : fan_out(ctx, "refresh_controls", json::object()))
    applied.push_back(r["node"]);
  return json{
      {"pipeline", p}, {"paused", pause}, {"applied_by", std::move(applied)}};
}

/// Deletes the messages of ended jobs the broker left in the stream
/// (runtime/node/stream_tidy.hpp); `dry_run` only counts them.
json tidy_stream(const ctx_ptr& ctx, const json& req) {
  tidy_request tr;
  if (req.is_object() && req.contains("dry_run")) {
    if (!req["dry_run"].is_boolean())
      throw admin_failure("invalid_request", "\"dry_run\" must be a boolean");
    tr.dry_run = req["dry_run"].get<bool>();
  }
  auto age = opt_int(req, "older_than_ms", -1);
  if (age < -1)
    throw admin_failure("invalid_request",
                        "\"older_than_ms\" must be 0 or more");
  tr.older_than = std::chrono::milliseconds{age};
  tr.limit = static_cast<std::size_t>(opt_count(req, "limit", 1000, 1, 100000));
  auto rep = ctx->tidy->run(tr);
  if (!rep)
    throw admin_failure("unavailable", describe(rep.error()));
  if (!rep->refused.empty())
    throw admin_failure("conflict", rep->refused);
  return json{
      {"dry_run", rep->dry_run},   {"older_than_ms", rep->older_than_ms},
      {"examined", rep->examined}, {"ended", rep->ended},
      {"deleted", rep->deleted},   {"complete", rep->complete},
      {"messages", rep->messages}};
}

void add_cluster_verbs(admin_verb_table& bridge, const ctx_ptr& ctx) {
  bridge.add_control("cancel", {"job_id", "pipeline"},
                     [ctx](const json& req) { return cancel_job(ctx, req); });
  bridge.add_control("retry", {"job_id", "from_stage"},
                     [ctx](const json& req) { return retry_job(ctx, req); });
  bridge.add_control("replay",
                     {"job_id", "from_stage", "all", "pipeline", "limit"},
                     [ctx](const json& req) { return replay_job(ctx, req); });
  bridge.add_control("prune", {}, [ctx](const json&) {
    auto n = ctx->pruner->run_once();
    if (n < 0)
      throw admin_failure("conflict",
                          "another node is pruning right now; try again");
    return json{{"pruned", n}};
  });
  bridge.add_control("tidy", {"dry_run", "older_than_ms", "limit"},
                     [ctx](const json& req) { return tidy_stream(ctx, req); });
  bridge.add_control("purge", {"job_id"}, [ctx](const json& req) {
    return ctx->store->purge(need_string(req, "job_id"), ctx->node_id);
  });
  for (bool pause : {true, false})
    bridge.add_control(
        pause ? "pause" : "unpause", {"pipeline"},
        [ctx, pause](const json& req) { return set_paused(ctx, req, pause); });
}

/// Cron schedules: list, pause, resume, trigger (docs/scheduling.md).
void add_schedule_verbs(admin_verb_table& bridge, const ctx_ptr& ctx) {
  bridge.add_read("schedules", [ctx](const json&) {
    return json{{"schedules", ctx->store->list_schedules()}};
  });
  bridge.add_control("schedule", {"name", "action"}, [ctx](const json& req) {
    auto name = need_string(req, "name");
    auto action = need_string(req, "action");
    if (action == "pause" || action == "resume")
      return ctx->store->set_schedule_paused(name, action == "pause");
    if (action == "trigger")
      return ctx->store->trigger_schedule(name);
    if (action == "delete")
      return ctx->store->delete_schedule(name);
    throw admin_failure("invalid_request",
                        "action must be pause, resume, trigger or delete "
                        "(got '" +
                            action + "')");
  });
}

} // namespace

void add_node_admin_verbs(admin_verb_table& bridge, ctx_ptr ctx) {
  add_read_verbs(bridge, ctx);
  add_local_verbs(bridge, ctx);
  add_cluster_verbs(bridge, ctx);
  add_schedule_verbs(bridge, ctx);
}

} // namespace troupe
