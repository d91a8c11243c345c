#include "messages/admin_json.hpp"

namespace troupe {

using json = nlohmann::json;

json member_json(const member& m) {
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

json stats_json(const pipeline_stats& s, bool paused) {
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

json brief_json(const job_brief& b) {
  auto out = json{{"job_id", b.job_id},   {"state", b.state},
                  {"stage", b.stage},     {"stage_index", b.stage_index},
                  {"attempt", b.attempt}, {"life", b.life},
                  {"actor", b.job_actor}, {"stage_actor", b.stage_actor},
                  {"for_ms", b.for_ms},   {"restarts", b.restarts}};
  if (b.branches.empty())
    return out;
  auto branches = json::array();
  for (const auto& x : b.branches)
    branches.push_back(json{{"stage", x.stage},
                            {"stage_index", x.stage_index},
                            {"attempt", x.attempt},
                            {"state", x.state},
                            {"stage_actor", x.stage_actor},
                            {"for_ms", x.for_ms}});
  out["branches"] = std::move(branches);
  return out;
}

json admin_ok(const std::string& node, json result) {
  return json{{"ok", true}, {"node", node}, {"result", std::move(result)}};
}

json admin_error(const std::string& node, const std::string& code,
                 const std::string& message) {
  return json{{"ok", false},
              {"node", node},
              {"error", {{"code", code}, {"message", message}}}};
}

} // namespace troupe
