#include "runtime/shell_session.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <sstream>

#include "messages/json_codec.hpp"
#include "runtime/admin_client.hpp"

namespace troupe {

using json = nlohmann::json;
using namespace std::chrono_literals;

// -- the command table
// ---------------------------------------------------------

struct shell_session::command {
  std::string name;
  std::string usage;
  std::string summary;
  /// Flags taking a value, and flags that are switches.
  std::vector<std::string> value_flags;
  std::vector<std::string> switches;
  std::size_t min_args = 0;
  std::size_t max_args = 0;
  /// Kind of the positional argument for completion ("pipeline", "node").
  std::string arg_kind;
};

namespace {

const std::vector<shell_session::command>& commands() {
  static const std::vector<shell_session::command> table = {
      {"nodes",
       "nodes",
       "cluster members: state, health, load, uptime, last heartbeat",
       {},
       {},
       0,
       0,
       ""},
      {"pipelines",
       "pipelines",
       "per pipeline: jobs by state, in flight/capacity, nodes, paused",
       {},
       {},
       0,
       0,
       ""},
      {"stats",
       "stats",
       "cluster totals: jobs by state, rates over the last minute, retries, "
       "dead letters",
       {},
       {},
       0,
       0,
       ""},
      {"jobs",
       "jobs [--pipeline P] [--state S] [--tenant T] [--since 10m] [--limit N] "
       "[--after ID]",
       "list jobs, newest first; --after continues from a previous page",
       {"--pipeline", "--state", "--tenant", "--since", "--limit", "--after"},
       {},
       0,
       0,
       ""},
      {"job",
       "job ID [--full]",
       "one job: state, each stage with its attempts (every life), payload, "
       "result, events; --full shows large values whole",
       {},
       {"--full"},
       1,
       1,
       "job"},
      {"tree",
       "tree NODE|all [--limit N]",
       "the live supervision tree of a node: pipeline supervisors, job "
       "actors, stage actors",
       {"--limit"},
       {},
       1,
       1,
       "node"},
      {"watch",
       "watch [--pipeline P] [--job ID] [--count N] [--for 30s]",
       "live events until Ctrl-C (or N events, or a duration)",
       {"--pipeline", "--job", "--count", "--for"},
       {},
       0,
       0,
       ""},
      {"retry",
       "retry ID [--from-stage S]",
       "run a job again now: skips a retry wait, or starts a new life of a "
       "finished job from stage S (name or index)",
       {"--from-stage"},
       {},
       1,
       1,
       "job"},
      {"dlq",
       "dlq [--pipeline P] [--limit N]",
       "dead-lettered jobs, newest first",
       {"--pipeline", "--limit"},
       {},
       0,
       0,
       ""},
      {"replay",
       "replay ID [--from-stage S] | replay --all [--pipeline P]",
       "start a new life of dead-lettered jobs (from the stage that failed)",
       {"--from-stage", "--pipeline", "--limit"},
       {"--all"},
       0,
       1,
       "job"},
      {"cancel",
       "cancel ID [--pipeline P]",
       "cancel a job wherever it is: running or waiting on any node, or "
       "still in the stream (then give --pipeline)",
       {"--pipeline"},
       {},
       1,
       1,
       "job"},
      {"drain",
       "drain NODE",
       "a node stops fetching, finishes in-flight jobs, leaves",
       {},
       {},
       1,
       1,
       "node"},
      {"resume",
       "resume NODE",
       "cancel a drain that has not finished",
       {},
       {},
       1,
       1,
       "node"},
      {"pause",
       "pause PIPELINE",
       "no node fetches jobs of the pipeline (cluster-wide, persistent)",
       {},
       {},
       1,
       1,
       "pipeline"},
      {"unpause",
       "unpause PIPELINE",
       "fetch jobs of the pipeline again",
       {},
       {},
       1,
       1,
       "pipeline"},
      {"tenants",
       "tenants",
       "tenant limits (max_in_flight, rate) and what each tenant uses now",
       {},
       {},
       0,
       0,
       ""},
      {"retention",
       "retention",
       "what retention would prune now, per pipeline (nothing is deleted)",
       {},
       {},
       0,
       0,
       ""},
      {"prune",
       "prune",
       "prune finished jobs past their retention now (normally done in the "
       "background)",
       {},
       {},
       0,
       0,
       ""},
      {"purge",
       "purge ID",
       "delete a dead-lettered job and its history for good",
       {},
       {},
       1,
       1,
       "job"},
      {"help",
       "help [COMMAND]",
       "commands, or one command in detail",
       {},
       {},
       0,
       1,
       "command"},
      {"quit",
       "quit",
       "leave the shell (also: exit, Ctrl-D)",
       {},
       {},
       0,
       0,
       ""},
  };
  return table;
}

const shell_session::command* find_command(const std::string& name) {
  for (auto& c : commands())
    if (c.name == name)
      return &c;
  return nullptr;
}

shell_outcome failure(const std::string& cmd, const std::string& code,
                      const std::string& message) {
  shell_outcome o;
  o.ok = false;
  o.doc = json{{"ok", false},
               {"command", cmd},
               {"error", {{"code", code}, {"message", message}}}};
  o.text = "error: " + message;
  return o;
}

/// Turns a failed admin reply into an outcome.
shell_outcome from_reply_error(const std::string& cmd, const json& reply) {
  std::string code = "failed";
  std::string message = reply.dump();
  if (reply.is_object() && reply.contains("error") &&
      reply["error"].is_object()) {
    code = reply["error"].value("code", code);
    message = reply["error"].value("message", message);
    if (code == "permission_denied")
      message = "permission denied: " + cmd + " needs " +
                reply["error"].value("rights", "read") +
                " rights (NATS: " + message + ")";
  }
  return failure(cmd, code, message);
}

shell_outcome success(const std::string& cmd, json doc, std::string text) {
  shell_outcome o;
  doc["ok"] = true;
  doc["command"] = cmd;
  o.doc = std::move(doc);
  o.text = std::move(text);
  return o;
}

std::string num(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number())
    return "0";
  return std::to_string(j[key].get<std::int64_t>());
}

std::int64_t int_of(const json& j, const char* key, std::int64_t dflt = 0) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number())
    return dflt;
  return j[key].get<std::int64_t>();
}

std::string str_of(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string())
    return {};
  return j[key].get<std::string>();
}

std::string clock_time(std::int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min,
                tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

/// JSON value as one line of text for humans, cut to `n` characters.
std::string show_value(const json& v, std::size_t n) {
  if (v.is_object() && v.value("truncated", false) && v.contains("preview"))
    return ellipsize(str_of(v, "preview"), n) + "  (" + num(v, "bytes") +
           " bytes, truncated)";
  return ellipsize(v.dump(), n);
}

} // namespace

// -- session
// -------------------------------------------------------------------

shell_session::shell_session(std::shared_ptr<nats_client> nats,
                             shell_settings settings)
    : nats_(std::move(nats)), s_(std::move(settings)) {
  print_live = [](const std::string& line) {
    std::fputs(line.c_str(), stdout);
    std::fflush(stdout);
  };
}

std::vector<std::string> shell_session::split_words(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quote) {
      if (c == quote)
        quote = 0;
      else if (c == '\\' && quote == '"' && i + 1 < line.size())
        cur += line[++i];
      else
        cur += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < line.size()) {
      cur += line[++i];
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (in_word)
        out.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (in_word)
    out.push_back(std::move(cur));
  return out;
}

std::vector<std::string> shell_session::command_names() const {
  std::vector<std::string> out;
  for (auto& c : commands())
    out.push_back(c.name);
  out.push_back("exit");
  return out;
}

std::vector<std::string>
shell_session::flags_of(const std::string& name) const {
  std::vector<std::string> out;
  if (auto* c = find_command(name)) {
    out = c->value_flags;
    out.insert(out.end(), c->switches.begin(), c->switches.end());
  }
  return out;
}

std::string shell_session::argument_kind(const std::string& name,
                                         const std::string& previous,
                                         std::size_t position) const {
  if (previous == "--pipeline")
    return "pipeline";
  if (previous == "--state")
    return "state";
  auto* c = find_command(name);
  if (!c || position != 1 || previous.rfind("--", 0) == 0)
    return "";
  return c->arg_kind;
}

std::vector<std::string> shell_session::pipeline_names() {
  if (pipelines_seen_.empty()) {
    cmd_nodes();
    auto counts = request_any("read", "counts", json{}, s_.timeout);
    if (counts.value("ok", false) && counts["result"].is_object())
      for (auto& kv : counts["result"].items())
        pipelines_seen_.insert(kv.key());
  }
  return {pipelines_seen_.begin(), pipelines_seen_.end()};
}

std::vector<std::string> shell_session::node_ids() {
  if (nodes_seen_.empty())
    cmd_nodes();
  return {nodes_seen_.begin(), nodes_seen_.end()};
}

json shell_session::request_any(const std::string& cls, const std::string& verb,
                                const json& body,
                                std::chrono::milliseconds wait) {
  return admin_request(*nats_, s_.prefix + ".admin.any." + cls + "." + verb,
                       body, wait);
}

std::vector<json> shell_session::gather_all(const std::string& verb) {
  return admin_gather(*nats_, s_.prefix + ".admin.all.read." + verb, "",
                      s_.gather, known_nodes_);
}

shell_outcome shell_session::run(const std::vector<std::string>& words) {
  if (words.empty())
    return success("", json::object(), "");
  auto name = words[0] == "exit" ? std::string{"quit"} : words[0];
  auto* c = find_command(name);
  if (!c)
    return failure(words[0], "unknown_command",
                   "unknown command '" + words[0] + "' — try: help");
  std::map<std::string, std::string> flags;
  std::vector<std::string> args;
  for (std::size_t i = 1; i < words.size(); ++i) {
    const auto& w = words[i];
    if (w.rfind("--", 0) == 0 && w.size() > 2) {
      auto eq = w.find('=');
      auto key = w.substr(0, eq);
      bool takes_value =
          std::count(c->value_flags.begin(), c->value_flags.end(), key) > 0;
      bool is_switch =
          std::count(c->switches.begin(), c->switches.end(), key) > 0;
      if (!takes_value && !is_switch) {
        auto known = flags_of(name);
        std::string list;
        for (auto& k : known)
          list += (list.empty() ? "" : " ") + k;
        return failure(name, "bad_flag",
                       "unknown flag '" + key + "' for " + name +
                           (list.empty() ? " (it takes no flags)"
                                         : " (flags: " + list + ")") +
                           " — usage: " + c->usage);
      }
      if (is_switch) {
        flags[key] = "true";
      } else if (eq != std::string::npos) {
        flags[key] = w.substr(eq + 1);
      } else if (i + 1 < words.size()) {
        flags[key] = words[++i];
      } else {
        return failure(name, "bad_flag",
                       key + " needs a value — usage: " + c->usage);
      }
    } else {
      args.push_back(w);
    }
  }
  if (args.size() < c->min_args || args.size() > c->max_args)
    return failure(name, "bad_arguments",
                   (args.size() < c->min_args ? "missing argument"
                                              : "too many arguments") +
                       std::string{" — usage: "} + c->usage);
  return dispatch(*c, flags, args);
}

shell_outcome
shell_session::dispatch(const command& c,
                        const std::map<std::string, std::string>& flags,
                        const std::vector<std::string>& args) {
  auto flag = [&](const char* k) {
    auto i = flags.find(k);
    return i == flags.end() ? std::string{} : i->second;
  };
  auto arg = args.empty() ? std::string{} : args[0];
  const auto& n = c.name;
  if (n == "nodes")
    return cmd_nodes();
  if (n == "pipelines" || n == "stats")
    return cmd_pipelines(n == "stats");
  if (n == "jobs")
    return cmd_jobs(flags);
  if (n == "job")
    return cmd_job(arg, flags.count("--full") > 0);
  if (n == "tree") {
    int limit = 200;
    if (!flag("--limit").empty())
      limit = std::atoi(flag("--limit").c_str());
    return cmd_tree(arg, limit);
  }
  if (n == "watch")
    return cmd_watch(flags);
  if (n == "dlq")
    return cmd_dlq(flags);
  if (n == "retry" || n == "replay") {
    json body = json::object();
    if (n == "replay" && flags.count("--all")) {
      if (!arg.empty())
        return failure(n, "bad_arguments",
                       "give either a job id or --all — usage: " + c.usage);
      body["all"] = true;
      body["pipeline"] = flag("--pipeline");
      if (!flag("--limit").empty())
        body["limit"] = std::atoi(flag("--limit").c_str());
    } else {
      if (arg.empty())
        return failure(n, "bad_arguments",
                       "missing job id — usage: " + c.usage);
      body["job_id"] = arg;
    }
    auto from = flag("--from-stage");
    if (!from.empty()) {
      bool digits = std::all_of(from.begin(), from.end(),
                                [](char ch) { return ch >= '0' && ch <= '9'; });
      body["from_stage"] = digits ? json(std::atoi(from.c_str())) : json(from);
    }
    return cmd_steer(n, body);
  }
  if (n == "cancel") {
    json body{{"job_id", arg}};
    if (!flag("--pipeline").empty())
      body["pipeline"] = flag("--pipeline");
    return cmd_steer(n, body);
  }
  if (n == "pause" || n == "unpause")
    return cmd_steer(n, json{{"pipeline", arg}});
  if (n == "drain" || n == "resume")
    return cmd_node_control(n, arg);
  if (n == "help")
    return cmd_help(arg);
  if (n == "tenants")
    return cmd_tenants();
  if (n == "retention" || n == "prune" || n == "purge")
    return cmd_retention(n, arg);
  return success(n, json::object(), ""); // quit: the caller stops
}

// -- nodes, pipelines, stats
// -----------------------------------------------------

/// The permission refusal among gathered replies, if any.
static const json* refusal(const std::vector<json>& replies) {
  for (auto& r : replies)
    if (r.is_object() && r.contains("error") && r["error"].is_object() &&
        r["error"].value("code", "") == "permission_denied")
      return &r;
  return nullptr;
}

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

shell_outcome shell_session::cmd_pipelines(bool totals_only) {
  const char* name = totals_only ? "stats" : "pipelines";
  auto counts = request_any("read", "counts", json{}, s_.timeout);
  if (!counts.value("ok", false))
    return from_reply_error(name, counts);
  auto per_node = gather_all("stats");
  if (auto* r = refusal(per_node))
    return from_reply_error(name, *r);
  // Live figures from every node: in flight, capacity, paused.
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
  std::set<std::string> names;
  for (auto& kv : counts["result"].items())
    names.insert(kv.key());
  for (auto& kv : live)
    names.insert(kv.first);
  static const char* states[] = {"queued",    "running",       "retrying",
                                 "succeeded", "dead_lettered", "cancelled"};
  json list = json::object();
  json totals{{"jobs", json::object()},
              {"last_minute", json::object()},
              {"dead_letters", 0},
              {"in_flight", 0},
              {"capacity", 0}};
  for (auto s : states)
    totals["jobs"][s] = 0;
  text_table t{{"PIPELINE", "STATE", "QUEUED", "RUNNING", "RETRYING",
                "SUCCEEDED", "DEAD", "CANCELLED", "IN FLIGHT", "NODES"}};
  for (auto& name_ : names) {
    pipelines_seen_.insert(name_);
    json c = counts["result"].contains(name_) ? counts["result"][name_]
                                              : json::object();
    json l = live.count(name_) ? live[name_] : json::object();
    json st = c.contains("states") ? c["states"] : json::object();
    bool paused = c.value("paused", false);
    auto in_flight = int_of(l, "running") + int_of(l, "queued");
    json entry{
        {"pipeline", name_},
        {"paused", paused},
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
        {"in_flight", in_flight},
        {"capacity", int_of(l, "capacity")},
        {"nodes", l.contains("node_ids") ? l["node_ids"].size() : 0},
        {"node_ids", l.contains("node_ids") ? l["node_ids"] : json::array()},
        {"paused_on",
         l.contains("paused_on") ? l["paused_on"] : json::array()}};
    for (auto s : states) {
      entry["jobs"][s] = int_of(st, s);
      totals["jobs"][s] = int_of(totals["jobs"], s) + int_of(st, s);
    }
    for (auto& kv : entry["last_minute"].items())
      totals["last_minute"][kv.key()] =
          int_of(totals["last_minute"], kv.key().c_str()) +
          kv.value().get<std::int64_t>();
    totals["dead_letters"] =
        int_of(totals, "dead_letters") + int_of(c, "dead_letters");
    totals["in_flight"] = int_of(totals, "in_flight") + in_flight;
    totals["capacity"] = int_of(totals, "capacity") + int_of(l, "capacity");
    auto node_count = entry["node_ids"].size();
    t.add(
        {name_,
         paint_state(paused ? "paused" : (node_count ? "fetching" : "no node"),
                     s_.style),
         num(st, "queued"), num(st, "running"), num(st, "retrying"),
         num(st, "succeeded"), num(st, "dead_lettered"), num(st, "cancelled"),
         std::to_string(in_flight) + "/" + num(l, "capacity"),
         std::to_string(node_count)});
    list[name_] = std::move(entry);
  }
  if (!totals_only)
    return success(name, json{{"pipelines", std::move(list)}},
                   t.empty() ? "no pipelines yet\n" : t.str(s_.style));
  auto lm = totals["last_minute"];
  auto rate = [&](const char* k) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.1f/s",
                  static_cast<double>(int_of(lm, k)) / 60.0);
    return std::string{buf};
  };
  std::ostringstream out;
  out << "jobs:         ";
  for (auto s : states)
    out << s << " " << num(totals["jobs"], s) << "  ";
  out << "\nlast minute:  succeeded " << num(lm, "succeeded") << " ("
      << rate("succeeded") << "), dead-lettered " << num(lm, "dead_lettered")
      << ", cancelled " << num(lm, "cancelled") << ", failed attempts "
      << num(lm, "retries") << "\n"
      << "dead letters: " << num(totals, "dead_letters")
      << " waiting (see: dlq)\n"
      << "in flight:    " << num(totals, "in_flight") << "/"
      << num(totals, "capacity") << " on " << per_node.size() << " node(s)\n";
  return success(name,
                 json{{"totals", std::move(totals)},
                      {"pipelines", std::move(list)},
                      {"nodes_answered", per_node.size()}},
                 out.str());
}

// -- jobs, job, dlq
// ----------------------------------------------------------------

shell_outcome
shell_session::cmd_jobs(const std::map<std::string, std::string>& flags) {
  json body = json::object();
  for (auto [flag, key] :
       {std::pair{"--pipeline", "pipeline"}, std::pair{"--state", "state"},
        std::pair{"--tenant", "tenant"}, std::pair{"--after", "after"}})
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
  auto& res = r["result"];
  auto now = wall_now_ms();
  text_table t{{"JOB", "PIPELINE", "STATE", "STAGE", "ATTEMPT", "LIFE",
                "CREATED", "UPDATED", "LAST ERROR"}};
  for (auto& j : res["jobs"])
    t.add({str_of(j, "job_id"), str_of(j, "pipeline"),
           paint_state(str_of(j, "state"), s_.style), num(j, "stage_index"),
           num(j, "attempt"), num(j, "life"),
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

shell_outcome shell_session::cmd_job(const std::string& id, bool full) {
  auto r = request_any("read", "job", json{{"job_id", id}, {"full", full}},
                       s_.timeout);
  if (!r.value("ok", false))
    return from_reply_error("job", r);
  auto res = r["result"];
  auto& j = res["job"];
  auto now = wall_now_ms();
  std::ostringstream out;
  out << paint_header("job " + id, s_.style) << "  "
      << paint_state(str_of(j, "state"), s_.style) << "  pipeline "
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
  auto state = str_of(j, "state");
  if (!str_of(j, "lease_owner").empty() &&
      (state == "running" || state == "retrying"))
    out << ", held by " << str_of(j, "lease_owner");
  out << "\n";
  if (!str_of(j, "last_error").empty())
    out << "last error: " << str_of(j, "last_error") << "\n";
  out << "payload: " << show_value(j["payload"], full ? 100000 : 200) << "\n";
  if (!j["result"].is_null())
    out << "result:  " << show_value(j["result"], full ? 100000 : 200) << "\n";
  out << "\n";
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
             paint_state(ok ? "succeeded" : "failed", s_.style),
             format_duration_ms(int_of(a, "duration_ms")),
             format_ago(int_of(a, "started_at_ms"), now),
             ellipsize(err, full ? 100000 : 70)});
    }
  }
  out << (t.empty() ? "no attempts yet\n" : t.str(s_.style));
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
  out << "\nevents:\n";
  for (auto& e : res["events"]) {
    out << "  " << clock_time(int_of(e, "time_ms")) << "  "
        << str_of(e, "type");
    if (!str_of(e, "stage").empty() && int_of(e, "attempt") > 0)
      out << "  " << str_of(e, "stage") << " #" << num(e, "attempt");
    if (str_of(e, "type") == "job.replayed")
      out << "  life " << num(e, "life") << " from stage #"
          << num(e, "stage_index");
    if (!str_of(e, "node").empty())
      out << "  on " << str_of(e, "node");
    if (!str_of(e, "error").empty())
      out << "  " << ellipsize(str_of(e, "error"), 80);
    out << "\n";
  }
  if (res.value("truncated", false))
    out << "(large values truncated — show all: job " << id << " --full)\n";
  return success("job", std::move(res), out.str());
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
  natsSubscription* sub = nullptr;
  if (natsConnection_SubscribeSync(&sub, nats_->conn(), subject.c_str()) !=
      NATS_OK)
    return failure("watch", "unavailable", "cannot subscribe to " + subject);
  natsConnection_Flush(nats_->conn());
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
    natsMsg* m = nullptr;
    if (natsSubscription_NextMsg(&m, sub, 200) != NATS_OK)
      continue;
    std::string body{natsMsg_GetData(m),
                     static_cast<std::size_t>(natsMsg_GetDataLength(m))};
    natsMsg_Destroy(m);
    auto ev = json::parse(body, nullptr, false);
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
    print_live(line + "\n");
  }
  natsSubscription_Unsubscribe(sub);
  natsSubscription_Destroy(sub);
  return success("watch",
                 json{{"subject", subject},
                      {"count", seen},
                      {"events", std::move(events)}},
                 std::to_string(seen) + " event(s)\n");
}

// -- steering
// --------------------------------------------------------------------------

shell_outcome shell_session::cmd_steer(const std::string& verb,
                                       const json& body) {
  auto r = request_any("control", verb, body, std::max(s_.timeout, 10000ms));
  if (!r.value("ok", false))
    return from_reply_error(verb, r);
  auto res = r["result"];
  std::ostringstream out;
  if (verb == "cancel") {
    out << "job " << str_of(res, "job_id") << ": "
        << paint_state(str_of(res, "state"), s_.style) << " (was "
        << str_of(res, "was") << ")";
    if (res["by_node"].is_string())
      out << " by node " << str_of(res, "by_node");
    out << "\n";
  } else if (verb == "retry" && str_of(res, "action") == "retry_now") {
    out << "job " << str_of(res, "job_id") << ": retrying now on node "
        << str_of(res, "by_node") << "\n";
  } else if (verb == "replay" && res.contains("replayed")) {
    out << "replayed " << num(res, "replayed") << " dead letter(s)";
    if (!res["failed"].empty())
      out << ", " << res["failed"].size() << " failed:";
    out << "\n";
    for (auto& f : res["failed"])
      out << "  " << str_of(f, "job_id") << ": " << str_of(f, "error") << "\n";
  } else if (verb == "retry" || verb == "replay") {
    out << "job " << str_of(res, "job_id") << ": queued again, life "
        << num(res, "life") << " from stage #" << num(res, "from_stage")
        << " — follow it: watch --job " << str_of(res, "job_id") << "\n";
  } else if (verb == "pause" || verb == "unpause") {
    std::string nodes;
    for (auto& n : res["applied_by"])
      nodes += (nodes.empty() ? "" : ", ") + n.get<std::string>();
    out << "pipeline " << str_of(res, "pipeline") << ": "
        << paint_state(verb == "pause" ? "paused" : "fetching", s_.style)
        << " (applied by " << res["applied_by"].size() << " node(s)"
        << (nodes.empty() ? "" : ": " + nodes)
        << "; nodes that start later read it from the store)\n";
  }
  return success(verb, std::move(res), out.str());
}

shell_outcome shell_session::cmd_node_control(const std::string& verb,
                                              const std::string& node) {
  auto r =
      admin_request(*nats_, s_.prefix + ".admin." + node + ".control." + verb,
                    json{}, s_.timeout);
  if (!r.value("ok", false)) {
    if (str_of(r["error"], "code") == "no_answer")
      return failure(verb, "unknown_node",
                     "node '" + node + "' did not answer — try: nodes");
    return from_reply_error(verb, r);
  }
  return success(verb, json{{"node", node}, {"result", r["result"]}},
                 "node " + node + ": " +
                     paint_state(str_of(r["result"], "state"), s_.style) +
                     "\n");
}

shell_outcome shell_session::cmd_tenants() {
  auto replies = gather_all("tenants");
  if (auto* r = refusal(replies))
    return from_reply_error("tenants", *r);
  if (replies.empty())
    return failure("tenants", "no_answer", "no node answered — try: nodes");
  json merged = json::object();
  bool allow_unknown = true;
  for (auto& r : replies) {
    if (!r.value("ok", false))
      continue;
    allow_unknown = r["result"].value("allow_unknown", true);
    for (auto& kv : r["result"]["tenants"].items()) {
      auto& m = merged[kv.key()];
      if (m.is_null())
        m = kv.value();
      else {
        m["in_flight"] =
            int_of(m, "in_flight") + int_of(kv.value(), "in_flight");
        m["rate_limited"] =
            int_of(m, "rate_limited") + int_of(kv.value(), "rate_limited");
      }
    }
  }
  text_table t{{"TENANT", "MAX IN FLIGHT (per node)", "RATE (per node)",
                "IN FLIGHT", "RATE-LIMITED"}};
  for (auto& kv : merged.items()) {
    auto& m = kv.value();
    t.add(
        {kv.key(),
         int_of(m, "max_in_flight") > 0 ? num(m, "max_in_flight") : "unlimited",
         str_of(m, "rate").empty() ? "unlimited" : str_of(m, "rate"),
         num(m, "in_flight"), num(m, "rate_limited")});
  }
  return success(
      "tenants", json{{"allow_unknown", allow_unknown}, {"tenants", merged}},
      t.str(s_.style) + (allow_unknown
                             ? "unlisted tenants get the default limits\n"
                             : "unlisted tenants are refused "
                               "(unknown_tenant)\n"));
}

shell_outcome shell_session::cmd_retention(const std::string& verb,
                                           const std::string& job_id) {
  auto r = verb == "retention"
               ? request_any("read", "retention", json{}, s_.timeout)
               : request_any("control", verb,
                             verb == "purge" ? json{{"job_id", job_id}}
                                             : json::object(),
                             std::max(s_.timeout, 30000ms));
  if (!r.value("ok", false))
    return from_reply_error(verb, r);
  auto res = r["result"];
  std::ostringstream out;
  if (verb == "retention") {
    auto now = wall_now_ms();
    text_table t{{"PIPELINE", "KEEP FINISHED", "DUE NOW", "OLDEST DUE"}};
    for (auto& p : res["policies"])
      t.add({str_of(p, "pipeline"),
             int_of(p, "keep_ms") > 0 ? format_duration_ms(int_of(p, "keep_ms"))
                                      : "forever",
             num(p, "due"), format_ago(int_of(p, "oldest_finished_ms"), now)});
    out << t.str(s_.style) << "dead letters kept until replayed or purged: "
        << num(res, "dead_letters_kept") << "\n";
  } else if (verb == "prune") {
    out << "pruned " << num(res, "pruned") << " finished job(s)\n";
  } else {
    out << "job " << job_id << ": purged\n";
  }
  return success(verb, std::move(res), out.str());
}

shell_outcome shell_session::cmd_help(const std::string& topic) const {
  if (!topic.empty()) {
    auto* c = find_command(topic);
    if (!c)
      return failure("help", "unknown_command",
                     "unknown command '" + topic + "' — try: help");
    return success("help",
                   json{{"command_help", c->name},
                        {"usage", c->usage},
                        {"summary", c->summary}},
                   "usage: " + c->usage + "\n  " + c->summary + "\n");
  }
  text_table t{{"COMMAND", "WHAT IT DOES"}};
  json list = json::array();
  for (auto& c : commands()) {
    t.add({c.usage, c.summary});
    list.push_back({{"usage", c.usage}, {"summary", c.summary}});
  }
  return success("help", json{{"commands", std::move(list)}},
                 t.str(s_.style) +
                     "Separate commands with ';'. Tab completes commands, "
                     "pipelines and nodes.\n");
}

} // namespace troupe
