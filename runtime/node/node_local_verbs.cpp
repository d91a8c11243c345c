#include "runtime/node/node_local_verbs.hpp"

#include <stdexcept>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/admin_verbs.hpp"
#include "actors/atoms.hpp"
#include "actors/tenant_gate.hpp"
#include "messages/errc.hpp"
#include "messages/heartbeat.hpp"
#include "runtime/node/submit_api.hpp"

namespace troupe {

namespace {

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
void add_node_local_verbs(admin_verb_table& bridge,
                          const node_local_context& ctx) {
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
