// `troupe shell`: the admin shell. This first version is scripted
// (`-c "cmd; cmd"`, optionally `--json`) and speaks the admin subjects of
// docs/wire-format.md as any outside client would; the interactive mode and
// the store-backed verbs (jobs, job, dlq, replay, cancel, ...) come with the
// shell issue.
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "messages/errc.hpp"
#include "runtime/commands.hpp"
#include "runtime/nats_client.hpp"

namespace troupe {

namespace {

using json = nlohmann::json;

struct gathered {
  std::mutex mtx;
  std::vector<json> replies;
};

void on_reply(natsConnection*, natsSubscription*, natsMsg* m, void* closure) {
  auto* g = static_cast<gathered*>(closure);
  auto j = json::parse(natsMsg_GetData(m),
                       natsMsg_GetData(m) + natsMsg_GetDataLength(m), nullptr,
                       false);
  natsMsg_Destroy(m);
  if (j.is_discarded())
    return;
  std::lock_guard<std::mutex> guard{g->mtx};
  g->replies.push_back(std::move(j));
}

/// Sends one request to every node (`<prefix>.admin.all...`) and gathers
/// the replies that arrive within `wait`.
std::vector<json> gather(nats_client& nats, const std::string& subject,
                         std::chrono::milliseconds wait) {
  auto g = std::make_shared<gathered>();
  char inbox[96];
  std::snprintf(
      inbox, sizeof(inbox), "_INBOX.shell.%d.%lld", getpid(),
      static_cast<long long>(
          std::chrono::steady_clock::now().time_since_epoch().count()));
  natsSubscription* sub = nullptr;
  if (natsConnection_Subscribe(&sub, nats.conn(), inbox, on_reply, g.get()) !=
      NATS_OK)
    return {};
  auto* keep = new std::shared_ptr<gathered>(g);
  natsSubscription_SetOnCompleteCB(
      sub, [](void* p) { delete static_cast<std::shared_ptr<gathered>*>(p); },
      keep);
  natsConnection_PublishRequest(nats.conn(), subject.c_str(), inbox, "", 0);
  nats.flush();
  std::this_thread::sleep_for(wait);
  natsSubscription_Unsubscribe(sub);
  natsSubscription_Destroy(sub);
  std::lock_guard<std::mutex> guard{g->mtx};
  return g->replies;
}

std::string age(std::int64_t ms) {
  if (ms < 0)
    return "-";
  auto s = ms / 1000;
  if (s < 120)
    return std::to_string(s) + "s";
  if (s < 7200)
    return std::to_string(s / 60) + "m";
  return std::to_string(s / 3600) + "h";
}

/// A command's outcome: a JSON document, and text for humans.
struct outcome {
  bool ok = true;
  json doc;
  std::string text;
};

outcome fail(const std::string& msg) {
  outcome o;
  o.ok = false;
  o.doc = json{{"ok", false}, {"error", msg}};
  o.text = "error: " + msg;
  return o;
}

std::string pad(std::string s, std::size_t n) {
  if (s.size() < n)
    s.append(n - s.size(), ' ');
  return s;
}

outcome cmd_nodes(nats_client& nats, const subjects& subj) {
  auto replies = gather(nats, subj.prefix + ".admin.all.read.nodes",
                        std::chrono::milliseconds{700});
  if (replies.empty())
    return fail("no node answered on " + subj.prefix +
                ".admin.all.read.nodes (is a troupe node running?)");
  // Every node reports its whole view; a node's report about itself wins.
  std::map<std::string, json> nodes;
  for (auto& r : replies) {
    if (!r.value("ok", false))
      continue;
    auto self = r.value("node", "");
    for (auto& m : r["result"]) {
      auto id = m.value("node_id", "");
      if (!nodes.count(id) || id == self)
        nodes[id] = m;
    }
  }
  outcome o;
  o.doc = json{{"ok", true}, {"nodes", json::array()}};
  std::ostringstream t;
  t << pad("NODE", 14) << pad("HOST", 14) << pad("STATE", 10)
    << pad("HEALTH", 10) << pad("IN FLIGHT", 12) << "LAST SEEN\n";
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  for (auto& [id, m] : nodes) {
    o.doc["nodes"].push_back(m);
    t << pad(id, 14) << pad(m.value("host", ""), 14)
      << pad(m.value("state", ""), 10) << pad(m.value("health", ""), 10)
      << pad(std::to_string(m.value("in_flight", 0)) + "/" +
                 std::to_string(m.value("capacity", 0)),
             12)
      << age(m.value("silent_ms", std::int64_t{-1})) << " ago, up "
      << age(now - m.value("started_at_ms", now)) << "\n";
  }
  o.text = t.str();
  return o;
}

outcome cmd_stats(nats_client& nats, const subjects& subj) {
  auto replies = gather(nats, subj.prefix + ".admin.all.read.stats",
                        std::chrono::milliseconds{700});
  if (replies.empty())
    return fail("no node answered (is a troupe node running?)");
  std::map<std::string, json> per;
  static const char* fields[] = {"running",       "queued",    "succeeded",
                                 "dead_lettered", "cancelled", "restarts"};
  for (auto& r : replies) {
    if (!r.value("ok", false))
      continue;
    for (auto& p : r["result"]) {
      auto& agg = per[p.value("pipeline", "")];
      if (agg.is_null())
        agg = json::object(); // value() throws on null
      for (auto f : fields)
        agg[f] = agg.value(f, std::int64_t{0}) + p.value(f, std::int64_t{0});
      agg["nodes"] = agg.value("nodes", 0) + 1;
    }
  }
  outcome o;
  o.doc = json{{"ok", true}, {"pipelines", json::object()}};
  std::ostringstream t;
  t << pad("PIPELINE", 14) << pad("NODES", 7) << pad("RUNNING", 9)
    << pad("QUEUED", 8) << pad("SUCCEEDED", 11) << pad("DEAD", 7)
    << "CANCELLED\n";
  for (auto& [name, a] : per) {
    o.doc["pipelines"][name] = a;
    t << pad(name, 14) << pad(std::to_string(a.value("nodes", 0)), 7)
      << pad(std::to_string(a.value("running", 0)), 9)
      << pad(std::to_string(a.value("queued", 0)), 8)
      << pad(std::to_string(a.value("succeeded", 0)), 11)
      << pad(std::to_string(a.value("dead_lettered", 0)), 7)
      << a.value("cancelled", 0) << "\n";
  }
  o.text = t.str() + "(counts since each node started)\n";
  return o;
}

outcome cmd_control(nats_client& nats, const subjects& subj,
                    const std::string& verb, const std::string& node) {
  if (node.empty())
    return fail(verb + " needs a node id — try: nodes");
  auto r = nats.request(subj.prefix + ".admin." + node + ".control." + verb, "",
                        3000);
  if (!r)
    return fail("node '" + node + "' did not answer — try: nodes");
  auto j = json::parse(*r, nullptr, false);
  if (j.is_discarded() || !j.value("ok", false))
    return fail(j.is_discarded() ? *r : j["error"].value("message", *r));
  outcome o;
  o.doc = j;
  o.text = "node " + node + ": " + j["result"].value("state", "") + "\n";
  return o;
}

const char* help_text =
    "commands:\n"
    "  nodes            cluster members: state, health, load, last heartbeat\n"
    "  stats            per pipeline: running, queued, outcomes (all nodes)\n"
    "  pipelines        same as stats\n"
    "  drain NODE       stop fetching, finish in-flight jobs, leave\n"
    "  resume NODE      cancel a drain that has not finished\n"
    "  help             this list\n"
    "not built yet (see docs/roadmap.md): jobs, job, tree, watch, retry, dlq,\n"
    "  replay, cancel, pause, unpause, interactive mode\n";

outcome run_one(nats_client& nats, const subjects& subj,
                const std::vector<std::string>& words) {
  const auto& cmd = words[0];
  auto arg = words.size() > 1 ? words[1] : std::string{};
  if (cmd == "nodes")
    return cmd_nodes(nats, subj);
  if (cmd == "stats" || cmd == "pipelines")
    return cmd_stats(nats, subj);
  if (cmd == "drain" || cmd == "resume")
    return cmd_control(nats, subj, cmd, arg);
  if (cmd == "help") {
    outcome o;
    o.doc = json{{"ok", true}, {"help", help_text}};
    o.text = help_text;
    return o;
  }
  return fail("unknown command '" + cmd + "' — try: help");
}

} // namespace

int cmd_shell(const shell_options& opts) {
  if (opts.commands.empty()) {
    std::fprintf(stderr, "troupe shell: the interactive mode is not built "
                         "yet; run commands with -c \"nodes; stats\"\n");
    return 3;
  }
  std::string url = opts.nats_url;
  if (url.empty())
    if (auto env = std::getenv("TROUPE_NATS_URL"))
      url = env;
  if (url.empty())
    url = "nats://127.0.0.1:4222";
  nats_connect_options co;
  co.urls = url;
  co.name = "troupe-shell";
  co.connect_timeout_ms = 2000;
  auto nats = nats_client::connect(co);
  if (!nats) {
    std::fprintf(stderr, "troupe shell: %s\n", describe(nats.error()).c_str());
    return 1;
  }
  subjects subj{"troupe"};
  int failures = 0;
  std::stringstream all{opts.commands};
  std::string line;
  while (std::getline(all, line, ';')) {
    std::istringstream ws{line};
    std::vector<std::string> words;
    for (std::string w; ws >> w;)
      words.push_back(w);
    if (words.empty())
      continue;
    if (words[0] == "quit" || words[0] == "exit")
      break;
    auto o = run_one(**nats, subj, words);
    failures += !o.ok;
    if (opts.json)
      std::printf("%s\n", o.doc.dump().c_str());
    else if (o.ok)
      std::printf("%s", o.text.c_str());
    else
      std::fprintf(stderr, "%s\n", o.text.c_str());
  }
  std::fflush(stdout);
  return failures == 0 ? 0 : 1;
}

} // namespace troupe
