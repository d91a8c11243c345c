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

namespace shell_detail {

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

} // namespace shell_detail

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

namespace {

/// The stage actors under a job in `tree`: one, or one per stage running
/// in parallel (a graph pipeline's branches).
std::string stage_lines(const json& job, const std::string& indent) {
  std::string out;
  auto branches = job.value("branches", json::array());
  if (branches.empty()) {
    if (int_of(job, "stage_actor") > 0)
      out += indent + "└── stage " + str_of(job, "stage") + " attempt " +
             num(job, "attempt") + " (stage actor #" + num(job, "stage_actor") +
             ")\n";
    return out;
  }
  for (std::size_t i = 0; i < branches.size(); ++i) {
    const auto& b = branches[i];
    out += indent + (i + 1 == branches.size() ? "└── " : "├── ") + "stage " +
           str_of(b, "stage") + " attempt " + num(b, "attempt") + "  " +
           str_of(b, "state");
    if (int_of(b, "stage_actor") > 0)
      out += " (stage actor #" + num(b, "stage_actor") + ")";
    out += "\n";
  }
  return out;
}

} // namespace

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
        out << stage_lines(jobs[k], indent + (last_j ? "    " : "│   "));
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
  // Every job: '>' also takes ids with dots (several subject tokens).
  auto subject = job == "*" ? s_.prefix + ".events." + pipeline + ".>"
                            : subjects{s_.prefix}.events(pipeline, job);
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
