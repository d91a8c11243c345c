// The shell's `pipelines` and `stats`: the store's counts per pipeline and
// state, with the live figures every node reports.
// troupe shell: the inspection commands (nodes, pipelines, stats, jobs,
#include "messages/event_type.hpp"
// job, dlq, tree, watch).
#include "messages/json_guard.hpp"
#include "runtime/shell/shell_session.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <sstream>

#include "messages/json_codec.hpp"
#include "runtime/client/admin_client.hpp"
#include "runtime/shell/shell_reply.hpp"

namespace troupe {

using json = nlohmann::json;
using namespace shell_detail;

namespace {

const char* const job_states[] = {"scheduled",     "queued",   "running",
                                  "retrying",      "waiting",  "succeeded",
                                  "dead_lettered", "cancelled"};

/// Live figures per pipeline, summed over the nodes' `stats` replies: in
/// flight, capacity, counters, which nodes run it and where it is paused.
std::map<std::string, json> live_figures(const std::vector<json>& per_node) {
  std::map<std::string, json> live;
  for (auto& r : per_node) {
    if (!r.value("ok", false) || !r["result"].is_array())
      continue;
    for (auto& p : r["result"]) {
      auto& l = live[str_of(p, "pipeline")];
      if (l.is_null())
        l = json{{"node_ids", json::array()}, {"paused_on", json::array()}};
      for (auto k : {"running", "queued", "succeeded", "dead_lettered",
                     "cancelled", "restarts"})
        l[k] = int_of(l, k) + int_of(p, k);
      l["capacity"] = int_of(l, "capacity") + int_of(p, "max_in_flight");
      l["node_ids"].push_back(r["node"]);
      if (p.value("paused", false))
        l["paused_on"].push_back(r["node"]);
    }
  }
  return live;
}

/// One pipeline: `c` from the store's counts, `l` from the nodes.
json pipeline_entry(const std::string& name, const json& c, const json& l) {
  json st = c.contains("states") ? c["states"] : json::object();
  json entry{
      {"pipeline", name},
      {"paused", c.value("paused", false)},
      // Counters of the nodes since they started (as before v0.2).
      {"running", int_of(l, "running")},
      {"queued", int_of(l, "queued")},
      {"succeeded", int_of(l, "succeeded")},
      {"dead_lettered", int_of(l, "dead_lettered")},
      {"cancelled", int_of(l, "cancelled")},
      {"restarts", int_of(l, "restarts")},
      {"jobs", json::object()},
      {"last_minute",
       c.contains("last_minute") ? c["last_minute"] : json::object()},
      {"dead_letters", int_of(c, "dead_letters")},
      {"in_flight", int_of(l, "running") + int_of(l, "queued")},
      {"capacity", int_of(l, "capacity")},
      {"nodes", l.contains("node_ids") ? l["node_ids"].size() : 0},
      {"node_ids", l.contains("node_ids") ? l["node_ids"] : json::array()},
      {"paused_on", l.contains("paused_on") ? l["paused_on"] : json::array()}};
  for (auto s : job_states)
    entry["jobs"][s] = int_of(st, s);
  return entry;
}

json empty_totals() {
  json totals{{"jobs", json::object()},
              {"last_minute", json::object()},
              {"dead_letters", 0},
              {"in_flight", 0},
              {"capacity", 0}};
  for (auto s : job_states)
    totals["jobs"][s] = 0;
  return totals;
}

void add_to_totals(json& totals, const json& entry) {
  for (auto s : job_states)
    totals["jobs"][s] = int_of(totals["jobs"], s) + int_of(entry["jobs"], s);
  for (auto& kv : entry["last_minute"].items())
    totals["last_minute"][kv.key()] =
        int_of(totals["last_minute"], kv.key().c_str()) +
        kv.value().get<std::int64_t>();
  for (auto k : {"dead_letters", "in_flight", "capacity"})
    totals[k] = int_of(totals, k) + int_of(entry, k);
}

std::string totals_text(const json& totals, std::size_t nodes) {
  const auto& lm = totals["last_minute"];
  auto rate = [&](const char* k) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.1f/s",
                  static_cast<double>(int_of(lm, k)) / 60.0);
    return std::string{buf};
  };
  std::ostringstream out;
  out << "jobs:         ";
  for (auto s : job_states)
    out << s << " " << num(totals["jobs"], s) << "  ";
  out << "\nlast minute:  succeeded " << num(lm, "succeeded") << " ("
      << rate("succeeded") << "), dead-lettered " << num(lm, "dead_lettered")
      << ", cancelled " << num(lm, "cancelled") << ", failed attempts "
      << num(lm, "retries") << "\n"
      << "dead letters: " << num(totals, "dead_letters")
      << " waiting (see: dlq)\n"
      << "in flight:    " << num(totals, "in_flight") << "/"
      << num(totals, "capacity") << " on " << nodes << " node(s)\n";
  return out.str();
}

} // namespace

shell_outcome shell_session::cmd_pipelines(bool totals_only) {
  const char* name = totals_only ? "stats" : "pipelines";
  auto counts = request_any("read", "counts", json{}, s_.timeout);
  if (!counts.value("ok", false))
    return from_reply_error(name, counts);
  auto per_node = gather_all("stats");
  if (auto* r = refusal(per_node))
    return from_reply_error(name, *r);
  auto live = live_figures(per_node);
  std::set<std::string> names;
  for (auto& kv : counts["result"].items())
    names.insert(kv.key());
  for (auto& kv : live)
    names.insert(kv.first);
  json list = json::object();
  auto totals = empty_totals();
  text_table t{{"PIPELINE", "STATE", "QUEUED", "RUNNING", "RETRYING",
                "SUCCEEDED", "DEAD", "CANCELLED", "IN FLIGHT", "NODES"}};
  for (auto& p : names) {
    pipelines_seen_.insert(p);
    json c =
        counts["result"].contains(p) ? counts["result"][p] : json::object();
    json l = live.count(p) ? live[p] : json::object();
    auto entry = pipeline_entry(p, c, l);
    add_to_totals(totals, entry);
    auto node_count = entry["node_ids"].size();
    const auto& st = entry["jobs"];
    t.add({p,
           paint_state(entry["paused"].get<bool>()
                           ? "paused"
                           : (node_count ? "fetching" : "no node"),
                       s_.style),
           num(st, "queued"), num(st, "running"), num(st, "retrying"),
           num(st, "succeeded"), num(st, "dead_lettered"), num(st, "cancelled"),
           num(entry, "in_flight") + "/" + num(l, "capacity"),
           std::to_string(node_count)});
    list[p] = std::move(entry);
  }
  if (!totals_only)
    return success(name, json{{"pipelines", std::move(list)}},
                   t.empty() ? "no pipelines yet\n" : t.str(s_.style));
  auto text = totals_text(totals, per_node.size());
  return success(name,
                 json{{"totals", std::move(totals)},
                      {"pipelines", std::move(list)},
                      {"nodes_answered", per_node.size()}},
                 text);
}

} // namespace troupe
