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
#include "runtime/nats/nats_subscription.hpp"
#include "runtime/shell/shell_reply.hpp"

namespace troupe {

using json = nlohmann::json;
using namespace std::chrono_literals;
using namespace shell_detail;

// -- nodes, pipelines, stats
// -----------------------------------------------------

shell_outcome shell_session::cmd_nodes() {
  auto replies = gather_all("nodes");
  if (auto* r = refusal(replies))
    return from_reply_error("nodes", *r);
  if (replies.empty())
    return failure("nodes", "no_answer",
                   "no troupe node answered on " + s_.prefix +
                       ".admin.all.read.nodes — is a node running and "
                       "connected to this NATS?");
  // Every node reports its whole view; a node's report about itself wins.
  std::map<std::string, json> nodes;
  for (auto& r : replies) {
    if (!r.value("ok", false) || !r["result"].is_array())
      continue;
    auto self = str_of(r, "node");
    for (auto& m : r["result"]) {
      auto id = str_of(m, "node_id");
      if (!nodes.count(id) || id == self)
        nodes[id] = m;
    }
  }
  auto now = wall_now_ms();
  text_table t{{"NODE", "HOST", "STATE", "HEALTH", "IN FLIGHT", "UPTIME",
                "LAST HEARTBEAT", "PIPELINES"}};
  json list = json::array();
  std::size_t up = 0;
  for (auto& [id, m] : nodes) {
    auto state = str_of(m, "state");
    up += state != "down";
    nodes_seen_.insert(id);
    std::string pipes;
    if (m.contains("pipelines") && m["pipelines"].is_array())
      for (auto& p : m["pipelines"]) {
        pipelines_seen_.insert(p.get<std::string>());
        pipes += (pipes.empty() ? "" : ",") + p.get<std::string>();
      }
    auto started = int_of(m, "started_at_ms");
    m["uptime_ms"] = started > 0 ? now - started : 0;
    list.push_back(m);
    t.add({id, str_of(m, "host"), paint_state(state, s_.style),
           paint_state(str_of(m, "health"), s_.style),
           num(m, "in_flight") + "/" + num(m, "capacity"),
           format_duration_ms(started > 0 ? now - started : -1),
           format_duration_ms(int_of(m, "silent_ms", -1)) + " ago", pipes});
  }
  known_nodes_ = up;
  return success("nodes", json{{"nodes", std::move(list)}}, t.str(s_.style));
}

// -- jobs, job, dlq
// ----------------------------------------------------------------

shell_outcome
shell_session::cmd_jobs(const std::map<std::string, std::string>& flags) {
  json body = json::object();
  for (auto [flag, key] :
       {std::pair{"--pipeline", "pipeline"}, std::pair{"--state", "state"},
        std::pair{"--tenant", "tenant"}, std::pair{"--after", "after"},
        std::pair{"--parent", "parent"}, std::pair{"--batch", "batch"}})
    if (flags.count(flag))
      body[key] = flags.at(flag);
  if (flags.count("--limit")) {
    auto n = std::atoi(flags.at("--limit").c_str());
    if (n <= 0)
      return failure("jobs", "bad_flag", "--limit needs a positive number");
    body["limit"] = n;
  }
  if (flags.count("--since")) {
    auto d = parse_duration_ms(flags.at("--since"));
    if (d < 0)
      return failure("jobs", "bad_flag",
                     "--since needs a duration such as 90s, 10m, 2h, 7d");
    body["since_ms"] = wall_now_ms() - d;
  }
  auto r = request_any("read", "jobs", body, s_.timeout);
  if (!r.value("ok", false))
    return from_reply_error("jobs", r);
  // A running job's last reported progress: ` 40%`.
  auto percent_of = [](const json& j) -> std::string {
    auto p = j.find("progress");
    if (p == j.end() || !p->is_number())
      return "";
    return " " +
           std::to_string(static_cast<int>(p->get<double>() * 100 + 0.5)) + "%";
  };
  auto& res = r["result"];
  auto now = wall_now_ms();
  text_table t{{"JOB", "PIPELINE", "STATE", "STAGE", "ATTEMPT", "LIFE",
                "CREATED", "UPDATED", "LAST ERROR"}};
  for (auto& j : res["jobs"])
    t.add({str_of(j, "job_id"), str_of(j, "pipeline"),
           paint_state(str_of(j, "state"), s_.style) + percent_of(j),
           num(j, "stage_index"), num(j, "attempt"), num(j, "life"),
           format_ago(int_of(j, "created_at_ms"), now),
           format_ago(int_of(j, "updated_at_ms"), now),
           ellipsize(str_of(j, "last_error"), 60)});
  std::string text = t.empty() ? "no jobs match\n" : t.str(s_.style);
  if (res["next"].is_string()) {
    std::string again = "jobs";
    for (auto& [k, v] : flags)
      if (k != "--after")
        again += " " + k + " " + v;
    text +=
        "more: " + again + " --after " + res["next"].get<std::string>() + "\n";
  }
  return success("jobs", json{{"jobs", res["jobs"]}, {"next", res["next"]}},
                 text);
}

namespace {

/// A report's progress and message: ` 40% chunk 4 of 10`.
std::string progress_summary(const json& p) {
  std::string out;
  if (p.contains("progress") && p["progress"].is_number())
    out += " " +
           std::to_string(
               static_cast<int>(p["progress"].get<double>() * 100 + 0.5)) +
           "%";
  if (p.contains("message") && p["message"].is_string())
    out += " " + p["message"].get<std::string>();
  return out;
}

/// A stage's last report: `stage 2 (chunk) attempt 1: 40% chunk 4 of 10`.
std::string progress_text(const json& p) {
  return "stage " + std::to_string(p.value("stage_index", 0)) + " (" +
         p.value("stage", "") + ") attempt " +
         std::to_string(p.value("attempt", 0)) + ":" + progress_summary(p);
}

/// A child's parent, and a parent's children by state (docs/workflows.md).
void print_family(std::ostream& out, const json& j) {
  if (!str_of(j, "parent_id").empty())
    out << "parent: " << str_of(j, "parent_id") << "\n";
  auto c = j.find("children");
  if (c == j.end() || !c->is_object())
    return;
  out << "children: " << num(*c, "total");
  for (auto& [state, n] : (*c)["states"].items())
    out << "  " << state << " " << n.dump();
  if ((*c)["waiting"].is_object())
    out << "  (waits for them at stage #" << num((*c)["waiting"], "stage_index")
        << ")";
  out << "\n";
}

/// The job's row: state, times, holder, error, payload and result.
void print_job_row(std::ostream& out, const json& j, const std::string& id,
                   bool full, const text_style& style, std::int64_t now) {
  out << paint_header("job " + id, style) << "  "
      << paint_state(str_of(j, "state"), style) << "  pipeline "
      << str_of(j, "pipeline") << "  life " << num(j, "life") << "  epoch "
      << num(j, "epoch") << "\n";
  if (!str_of(j, "tenant").empty() || !str_of(j, "correlation_id").empty())
    out << "tenant " << str_of(j, "tenant") << "  correlation "
        << str_of(j, "correlation_id") << "\n";
  out << "created " << format_ago(int_of(j, "created_at_ms"), now)
      << ", started " << format_ago(int_of(j, "started_at_ms"), now)
      << ", finished " << format_ago(int_of(j, "finished_at_ms"), now);
  if (int_of(j, "next_attempt_at_ms") > 0)
    out << ", next attempt "
        << format_ago(int_of(j, "next_attempt_at_ms"), now);
  if (int_of(j, "run_at_ms") > 0)
    out << ", waits in the store until "
        << format_ago(int_of(j, "run_at_ms"), now);
  auto state = str_of(j, "state");
  if (!str_of(j, "lease_owner").empty() &&
      (state == "running" || state == "retrying"))
    out << ", held by " << str_of(j, "lease_owner");
  out << "\n";
  if (!str_of(j, "last_error").empty())
    out << "last error: " << str_of(j, "last_error") << "\n";
  print_family(out, j);
  if (j.contains("progress") && j["progress"].is_object())
    out << "progress: " << progress_text(j["progress"]) << "\n";
  out << "payload: " << show_value(j["payload"], full ? 100000 : 200) << "\n";
  if (!j["result"].is_null())
    out << "result:  " << show_value(j["result"], full ? 100000 : 200) << "\n";
}

/// Every attempt of every stage, the checkpoints and the dead letter.
void print_job_stages(std::ostream& out, const json& res, const std::string& id,
                      bool full, const text_style& style, std::int64_t now) {
  text_table t{{"STAGE", "LIFE", "ATTEMPT", "NODE", "OUTCOME", "DURATION",
                "STARTED", "ERROR"}};
  for (auto& s : res["stages"]) {
    auto stage = "#" + num(s, "index") + " " + str_of(s, "name");
    for (auto& a : s["attempts"]) {
      bool ok = a.value("ok", false);
      std::string err;
      if (a.contains("error"))
        err = str_of(a["error"], "code") + ": " + str_of(a["error"], "message");
      t.add({stage, num(a, "life"), num(a, "attempt"), str_of(a, "node"),
             paint_state(ok ? "succeeded" : "failed", style),
             format_duration_ms(int_of(a, "duration_ms")),
             format_ago(int_of(a, "started_at_ms"), now),
             ellipsize(err, full ? 100000 : 70)});
    }
  }
  out << (t.empty() ? "no attempts yet\n" : t.str(style));
  for (auto& s : res["stages"])
    if (s["checkpoint"].is_object())
      out << "checkpoint #" << num(s, "index") << " " << str_of(s, "name")
          << ": " << show_value(s["checkpoint"]["output"], full ? 100000 : 120)
          << "\n";
  if (res["dead_letter"].is_object()) {
    auto& d = res["dead_letter"];
    out << "dead letter: stage " << str_of(d, "stage") << ", "
        << format_ago(int_of(d, "dead_at_ms"), now) << ", replayed "
        << num(d, "replay_count") << " time(s) — replay " << id << "\n";
  }
}

/// The job's event log.
void print_job_events(std::ostream& out, const json& res) {
  out << "\nevents:\n";
  for (auto& e : res["events"]) {
    out << "  " << clock_time(int_of(e, "time_ms")) << "  "
        << str_of(e, "type");
    if (!str_of(e, "stage").empty() && int_of(e, "attempt") > 0)
      out << "  " << str_of(e, "stage") << " #" << num(e, "attempt");
    if (str_of(e, "type") == to_string(event_type::job_replayed))
      out << "  life " << num(e, "life") << " from stage #"
          << num(e, "stage_index");
    if (!str_of(e, "node").empty())
      out << "  on " << str_of(e, "node");
    if (!str_of(e, "error").empty())
      out << "  " << ellipsize(str_of(e, "error"), 80);
    out << "\n";
  }
}

} // namespace

shell_outcome shell_session::cmd_job(const std::string& id, bool full) {
  auto r = request_any("read", "job", json{{"job_id", id}, {"full", full}},
                       s_.timeout);
  if (!r.value("ok", false))
    return from_reply_error("job", r);
  auto res = r["result"];
  auto now = wall_now_ms();
  std::ostringstream out;
  print_job_row(out, res["job"], id, full, s_.style, now);
  out << "\n";
  print_job_stages(out, res, id, full, s_.style, now);
  print_job_events(out, res);
  if (res.value("truncated", false))
    out << "(large values truncated — show all: job " << id << " --full)\n";
  return success("job", std::move(res), out.str());
}

shell_outcome shell_session::cmd_batch(const std::string& id) {
  auto r = request_any("read", "batch", json{{"batch_id", id}}, s_.timeout);
  if (!r.value("ok", false))
    return from_reply_error("batch", r);
  auto b = r["result"];
  std::ostringstream out;
  out << paint_header("batch " + id, s_.style) << "  " << num(b, "total")
      << " jobs";
  for (auto& [state, n] : b["states"].items())
    out << "  " << state << " " << n.dump();
  out << "\n"
      << (b["completed_at_ms"].is_null()
              ? std::string{"not complete"}
              : "complete " +
                    format_ago(int_of(b, "completed_at_ms"), wall_now_ms()))
      << "\n";
  for (auto& [name, cb] : b["callbacks"].items())
    out << name << ": " << str_of(cb, "job_id") << "  "
        << paint_state(str_of(cb, "state"), s_.style) << "\n";
  return success("batch", std::move(b), out.str());
}

shell_outcome
shell_session::cmd_dlq(const std::map<std::string, std::string>& flags) {
  json body = json::object();
  if (flags.count("--pipeline"))
    body["pipeline"] = flags.at("--pipeline");
  if (flags.count("--limit"))
    body["limit"] = std::atoi(flags.at("--limit").c_str());
  auto r = request_any("read", "dlq", body, s_.timeout);
  if (!r.value("ok", false))
    return from_reply_error("dlq", r);
  auto now = wall_now_ms();
  text_table t{
      {"JOB", "PIPELINE", "STAGE", "ATTEMPTS", "REPLAYS", "DIED", "ERROR"}};
  for (auto& d : r["result"])
    t.add({str_of(d, "job_id"), str_of(d, "pipeline"),
           "#" + num(d, "failed_stage") + " " + str_of(d, "stage"),
           num(d, "attempts"), num(d, "replay_count"),
           format_ago(int_of(d, "dead_at_ms"), now),
           ellipsize(str_of(d, "last_error"), 70)});
  return success("dlq", json{{"dead_letters", r["result"]}},
                 t.empty() ? "no dead letters\n"
                           : t.str(s_.style) +
                                 "replay one: replay ID; all: replay --all\n");
}

// -- tree
// ----------------------------------------------------------------------------

shell_outcome shell_session::cmd_tree(const std::string& node, int limit) {
  std::vector<json> replies;
  json body{{"limit", limit}};
  if (node == "all") {
    replies = admin_gather(*nats_, s_.prefix + ".admin.all.read.tree",
                           body.dump(), s_.gather * 2, known_nodes_);
  } else {
    auto r = admin_request(*nats_, s_.prefix + ".admin." + node + ".read.tree",
                           body, s_.timeout);
    if (!r.value("ok", false)) {
      if (str_of(r["error"], "code") == "no_answer")
        return failure("tree", "unknown_node",
                       "node '" + node + "' did not answer — try: nodes");
      return from_reply_error("tree", r);
    }
    replies.push_back(r);
  }
  if (auto* r = refusal(replies))
    return from_reply_error("tree", *r);
  if (replies.empty())
    return failure("tree", "no_answer", "no node answered — try: nodes");
  json trees = json::array();
  std::ostringstream out;
  auto shown = [&](const json& b) {
    std::string line =
        str_of(b, "job_id") + "  " + paint_state(str_of(b, "state"), s_.style);
    if (str_of(b, "state") != "queued")
      line += "  stage #" + num(b, "stage_index") + " " + str_of(b, "stage") +
              "  attempt " + num(b, "attempt") + "  life " + num(b, "life") +
              "  (job actor #" + num(b, "actor") + ", " +
              format_duration_ms(int_of(b, "for_ms")) + ")";
    if (int_of(b, "restarts") > 0)
      line += "  restarted " + num(b, "restarts") + "x";
    return line;
  };
  for (auto& r : replies) {
    if (!r.value("ok", false))
      continue;
    auto& tr = r["result"];
    trees.push_back(tr);
    out << paint_header("node " + str_of(tr, "node"), s_.style) << "\n";
    auto& pipes = tr["pipelines"];
    for (std::size_t i = 0; i < pipes.size(); ++i) {
      auto& p = pipes[i];
      bool last_p = i + 1 == pipes.size();
      out << (last_p ? "└── " : "├── ") << "pipeline supervisor "
          << str_of(p, "pipeline") << " (#" << num(p, "actor") << ", "
          << paint_state(p.value("paused", false) ? "paused" : "fetching",
                         s_.style)
          << ", " << p["jobs"].size() << " job(s))\n";
      std::string indent = last_p ? "    " : "│   ";
      auto& jobs = p["jobs"];
      for (std::size_t k = 0; k < jobs.size(); ++k) {
        bool last_j = k + 1 == jobs.size();
        out << indent << (last_j ? "└── " : "├── ") << "job " << shown(jobs[k])
            << "\n";
        if (int_of(jobs[k], "stage_actor") > 0)
          out << indent << (last_j ? "    " : "│   ") << "└── stage "
              << str_of(jobs[k], "stage") << " attempt "
              << num(jobs[k], "attempt") << " (stage actor #"
              << num(jobs[k], "stage_actor") << ")\n";
      }
    }
  }
  return success("tree", json{{"nodes", std::move(trees)}}, out.str());
}

// -- watch
// ---------------------------------------------------------------------------

shell_outcome
shell_session::cmd_watch(const std::map<std::string, std::string>& flags) {
  auto pipeline = flags.count("--pipeline") ? flags.at("--pipeline") : "*";
  auto job = flags.count("--job") ? flags.at("--job") : "*";
  std::int64_t count = 0;
  std::int64_t for_ms = -1;
  if (flags.count("--count"))
    count = std::atoll(flags.at("--count").c_str());
  if (flags.count("--for") &&
      (for_ms = parse_duration_ms(flags.at("--for"))) < 0)
    return failure("watch", "bad_flag", "--for needs a duration such as 30s");
  auto subject = s_.prefix + ".events." + pipeline + "." + job;
  auto sub = nats_sync_subscription::open(*nats_, subject);
  if (!sub)
    return failure("watch", "unavailable", "cannot subscribe to " + subject);
  nats_->flush();
  if (!s_.json)
    print_live("watching " + subject + " (Ctrl-C stops)\n");
  interrupted = false;
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(for_ms < 0 ? 0 : for_ms);
  json events = json::array();
  std::int64_t seen = 0;
  while (!interrupted) {
    if (count > 0 && seen >= count)
      break;
    if (for_ms >= 0 && std::chrono::steady_clock::now() >= deadline)
      break;
    auto m = sub->next(200);
    if (!m)
      continue;
    auto ev = parse_json_or_discarded(m->data());
    if (ev.is_discarded())
      continue;
    ++seen;
    if (s_.json) {
      events.push_back(ev);
      continue;
    }
    std::string line = clock_time(int_of(ev, "time_ms")) + "  " +
                       paint_state(str_of(ev, "type"), s_.style) + "  " +
                       str_of(ev, "pipeline") + "/" + str_of(ev, "job_id");
    if (!str_of(ev, "stage").empty())
      line += "  " + str_of(ev, "stage") + " #" + num(ev, "attempt");
    if (!str_of(ev, "node").empty())
      line += "  on " + str_of(ev, "node");
    if (int_of(ev, "next_retry_ms", -1) >= 0)
      line += "  next in " + format_duration_ms(int_of(ev, "next_retry_ms"));
    if (!str_of(ev, "error").empty())
      line += "  " + ellipsize(str_of(ev, "error"), 80);
    if (ev.contains("progress") && ev["progress"].is_object())
      line += " " + ellipsize(progress_summary(ev["progress"]), 80);
    print_live(line + "\n");
  }
  sub->close();
  return success("watch",
                 json{{"subject", subject},
                      {"count", seen},
                      {"events", std::move(events)}},
                 std::to_string(seen) + " event(s)\n");
}

} // namespace troupe
