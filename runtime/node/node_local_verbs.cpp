#include "runtime/node/node_local_verbs.hpp"

#include <stdexcept>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/atoms.hpp"
#include "actors/tenant_gate.hpp"
#include "messages/errc.hpp"
#include "messages/heartbeat.hpp"
#include "runtime/node/admin_bridge.hpp"
#include "runtime/node/submit_api.hpp"

namespace troupe {

namespace {

nlohmann::json member_json(const member& m) {
  return {{"node_id", m.last.node_id},
          {"host", m.last.host},
          {"pid", m.last.pid},
          {"version", m.last.version},
          {"state", m.state},
          {"health", m.last.health},
          {"pipelines", m.last.pipelines},
          {"in_flight", m.last.in_flight},
          {"capacity", m.last.capacity},
          {"started_at_ms", m.last.started_at_ms},
          {"silent_ms", m.silent_ms}};
}

bool intake_paused(const node_pipelines& pipelines, const std::string& name) {
  for (auto& p : pipelines)
    if (p.name == name)
      return p.intake->paused();
  return false;
}

nlohmann::json stats_json(const pipeline_stats& s, bool paused) {
  return {{"pipeline", s.pipeline},
          {"paused", paused},
          {"running", s.running},
          {"queued", s.queued},
          {"max_in_flight", s.max_in_flight},
          {"succeeded", s.succeeded},
          {"dead_lettered", s.dead_lettered},
          {"cancelled", s.cancelled},
          {"skipped", s.skipped},
          {"abandoned", s.abandoned},
          {"restarts", s.restarts}};
}

nlohmann::json tenants_json(const node_local_context& ctx) {
  nlohmann::json out{{"allow_unknown", ctx.tenants.allow_unknown},
                     {"tenants", nlohmann::json::object()}};
  auto in_flight =
      ctx.gate ? ctx.gate->in_flight() : std::map<std::string, int>{};
  auto limited = ctx.api.rate_limited();
  auto entry = [&](const std::string& name, const tenant_limits& lim) {
    out["tenants"][name] = {
        {"max_in_flight", lim.max_in_flight},
        {"rate", lim.rate},
        {"in_flight", in_flight.count(name) ? in_flight.at(name) : 0},
        {"rate_limited", limited.count(name) ? limited.at(name) : 0}};
  };
  entry("default", ctx.tenants.defaults);
  for (auto& [name, lim] : ctx.tenants.named)
    entry(name, lim);
  return out;
}

} // namespace

std::vector<member> cluster_view(caf::actor_system& sys,
                                 const caf::actor& who) {
  caf::scoped_actor self{sys};
  std::vector<member> out;
  self->request(who, std::chrono::seconds{2}, get_atom::value)
      .receive(
          [&](std::vector<member>& view) { out = std::move(view); },
          [&](caf::error& err) { throw std::runtime_error(describe(err)); });
  return out;
}

std::vector<pipeline_stats> collect_pipeline_stats(caf::actor_system& sys,
                                                   const node_pipelines& p) {
  caf::scoped_actor self{sys};
  std::vector<pipeline_stats> out;
  for (auto& entry : p)
    self->request(entry.supervisor, std::chrono::seconds{2}, stats_atom::value)
        .receive(
            [&](pipeline_stats& s) { out.push_back(std::move(s)); },
            [&](caf::error& err) { throw std::runtime_error(describe(err)); });
  return out;
}

// The context is copied into each verb: its references are the node's.
void add_node_local_verbs(admin_bridge& bridge, const node_local_context& ctx) {
  bridge.add_read("nodes", [ctx](const nlohmann::json&) {
    nlohmann::json out = nlohmann::json::array();
    for (auto& m : cluster_view(ctx.sys, ctx.member))
      out.push_back(member_json(m));
    return out;
  });
  bridge.add_read("stats", [ctx](const nlohmann::json&) {
    nlohmann::json out = nlohmann::json::array();
    for (auto& s : collect_pipeline_stats(ctx.sys, ctx.pipelines))
      out.push_back(stats_json(s, intake_paused(ctx.pipelines, s.pipeline)));
    return out;
  });
  bridge.add_read("tenants",
                  [ctx](const nlohmann::json&) { return tenants_json(ctx); });
  bridge.add_control("drain", {}, [ctx](const nlohmann::json&) {
    ctx.drain();
    return nlohmann::json{{"state", "draining"}};
  });
  bridge.add_control("resume", {}, [ctx](const nlohmann::json&) {
    ctx.resume();
    return nlohmann::json{{"state", "up"}};
  });
}

} // namespace troupe
