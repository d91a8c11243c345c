#include "runtime/shell/shell_session.hpp"
#include "runtime/shell/shell_format.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <sstream>

#include "messages/json_codec.hpp"
#include "runtime/client/admin_client.hpp"
#include "runtime/shell/shell_commands.hpp"
#include "runtime/shell/shell_reply.hpp"

namespace troupe {

using json = nlohmann::json;
using namespace std::chrono_literals;
using namespace shell_detail;
// -- session
// -------------------------------------------------------------------

shell_session::shell_session(std::shared_ptr<nats_client> nats,
                             shell_settings settings)
    : nats_(std::move(nats)), s_(std::move(settings)) {
  print_live = [](const std::string& line) {
    std::fputs(printable(line).c_str(), stdout);
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
  if (n == "batch")
    return cmd_batch(arg);
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
  if (n == "schedules")
    return cmd_schedules();
  if (n == "schedule")
    return cmd_schedule(arg, args.size() > 1 ? args[1] : std::string{});
  if (n == "retention" || n == "prune" || n == "purge")
    return cmd_retention(n, arg);
  if (n == "tidy")
    return cmd_tidy(flags);
  return success(n, json::object(), ""); // quit: the caller stops
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
