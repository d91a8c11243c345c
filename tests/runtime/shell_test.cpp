// `troupe shell` against a live two-node cluster (real nats-server with
// JetStream, real PostgreSQL), driven as an operator or a script would: the
// real binary, `-c ... --json`, and the interactive mode through a
// pseudo-terminal.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#define PQXX_HAVE_OPTIONAL
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "child_process.hpp"
#include "messages/errc.hpp"
#include "runtime/nats_client.hpp"
#include "tests/support/test_servers.hpp"

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

// Fails permanently until the operator "fixes" it by creating the file.
const char* fixable_script = R"SH(#!/bin/sh
cat >/dev/null
if [ -e "$FIXED" ]; then echo '{"fixed":true}'; exit 0; fi
echo "the stage is broken until $FIXED exists" >&2
exit 1
)SH";

class shell_test : public ::testing::Test {
public:
  // The shared servers and nodes start in the first test's SetUp, not in
  // SetUpTestSuite: a failure there makes GoogleTest (and CTest) report
  // the tests as skipped instead of failed.
  void SetUp() override {
    if (!set_up_) {
      set_up_ = true;
      setup();
      setup_failed_ = HasFatalFailure();
    }
    ASSERT_FALSE(setup_failed_) << "the suite's set-up failed";
  }

  static void setup() {
    servers_ = new test_servers();
    dir_ = servers_->dir();
    write_file(dir_ + "/fixable.sh", fixable_script);
    chmod((dir_ + "/fixable.sh").c_str(), 0755);
    for (auto id : {"sh-a", "sh-b"}) {
      write_file(dir_ + "/" + id + ".toml", config_text(id));
      nodes_.push_back(std::make_unique<child_process>(
          std::vector<std::string>{TROUPE_BINARY, "node", "--config",
                                   dir_ + "/" + id + ".toml"},
          dir_ + "/" + id + ".log"));
    }
    for (auto& n : nodes_)
      if (!n->wait_for_output("ready", 60s))
        FAIL() << n->output();
    // Each node sees the other before the tests count on fan-out.
    nats_connect_options o;
    o.urls = servers_->nats_url();
    auto c = nats_client::connect(o);
    ASSERT_TRUE(c);
    for (int i = 0; i < 200; ++i) {
      int seeing_both = 0;
      for (auto id : {"sh-a", "sh-b"}) {
        auto r = (*c)->request(
            std::string{"troupe.admin."} + id + ".read.nodes", "", 2000);
        auto j = r ? json::parse(*r, nullptr, false) : json{};
        seeing_both += !j.is_discarded() && j.is_object() &&
                       j["result"].is_array() && j["result"].size() == 2;
      }
      if (seeing_both == 2)
        break;
      std::this_thread::sleep_for(100ms);
    }
  }

  static void TearDownTestSuite() {
    for (auto& n : nodes_)
      n->signal(SIGTERM);
    for (auto& n : nodes_)
      n->wait(30s);
    nodes_.clear();
    delete servers_;
    servers_ = nullptr;
  }

  static std::string config_text(const std::string& id) {
    return R"([node]
id = ")" + id +
           R"("
http = "127.0.0.1:0"
drain_grace = "2s"

[nats]
url = ")" + servers_->nats_url() +
           R"("
ack_wait = "5s"

[postgres]
url = ")" + servers_->pg_url() +
           R"("

[pipelines.fixable]
stages = [
  { name = "prepare", kind = "noop" },
  { name = "work", kind = "exec", command = [")" +
           dir_ + R"(/fixable.sh"], env = { FIXED = ")" + dir_ +
           R"(/fixed" } },
]

[pipelines.waiting]
stages = [
  { name = "flaky", kind = "fault", fail_first = 1,
    retry = { max_attempts = 3, initial = "10m", max = "10m", jitter = "none" } },
]

[pipelines.gated]
stages = [ { name = "only", kind = "noop" } ]

[pipelines.long]
stages = [ { name = "nap", kind = "sleep", duration = "4s" } ]

[pipelines.listed]
stages = [ { name = "only", kind = "noop" } ]
)";
  }

  /// Runs `troupe shell --json -c cmds`; returns the exit code and one JSON
  /// document per line of output.
  static std::pair<int, std::vector<json>>
  shell(const std::string& cmds, std::vector<std::string> extra = {}) {
    static int n = 0;
    std::vector<std::string> argv{
        TROUPE_BINARY, "shell", "--nats", servers_->nats_url(),
        "--json",      "-c",    cmds};
    argv.insert(argv.end(), extra.begin(), extra.end());
    child_process sh{argv, dir_ + "/shell-" + std::to_string(++n) + ".log"};
    auto rc = sh.wait(60s);
    std::vector<json> docs;
    std::istringstream lines{sh.output()};
    for (std::string line; std::getline(lines, line);) {
      auto j = json::parse(line, nullptr, false);
      if (!j.is_discarded())
        docs.push_back(std::move(j));
    }
    return {rc, docs};
  }

  /// The one document of a single command that must succeed.
  static json ok(const std::string& cmd) {
    auto [rc, docs] = shell(cmd);
    EXPECT_EQ(rc, 0) << cmd;
    EXPECT_EQ(docs.size(), 1u) << cmd;
    if (docs.empty())
      return json::object();
    EXPECT_TRUE(docs[0].value("ok", false)) << docs[0].dump();
    return docs[0];
  }

  static std::string submit(const std::string& pipeline, json payload = {}) {
    nats_connect_options o;
    o.urls = servers_->nats_url();
    auto c = nats_client::connect(o);
    EXPECT_TRUE(c);
    json body{{"pipeline", pipeline}, {"payload", payload}};
    auto r = (*c)->request("troupe.api.v1.submit", body.dump(), 5000);
    EXPECT_TRUE(r);
    auto j = json::parse(*r, nullptr, false);
    EXPECT_TRUE(j.value("ok", false)) << *r;
    return j.value("job_id", "");
  }

  static std::string state_of(const std::string& job_id) {
    pqxx::connection c{servers_->pg_url()};
    pqxx::nontransaction n{c};
    auto r = n.exec_params("select state from jobs where job_id = $1", job_id);
    return r.empty() ? "" : r[0][0].c_str();
  }

  static bool wait_state(const std::string& job_id, const std::string& state,
                         std::chrono::seconds limit = 30s) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (state_of(job_id) == state)
        return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  static std::int64_t count(const std::string& sql) {
    pqxx::connection c{servers_->pg_url()};
    pqxx::nontransaction n{c};
    return n.exec1(sql)[0].as<std::int64_t>();
  }

  static test_servers* servers_;
  static inline bool set_up_ = false;
  static inline bool setup_failed_ = false;
  static std::string dir_;
  static std::vector<std::unique_ptr<child_process>> nodes_;
};

test_servers* shell_test::servers_ = nullptr;
std::string shell_test::dir_;
std::vector<std::unique_ptr<child_process>> shell_test::nodes_;

} // namespace

TEST_F(shell_test, NodesAndPipelinesShowTheWholeCluster) {
  auto nodes = ok("nodes");
  ASSERT_EQ(nodes["nodes"].size(), 2u) << nodes.dump();
  std::set<std::string> ids;
  for (auto& n : nodes["nodes"]) {
    ids.insert(n["node_id"].get<std::string>());
    EXPECT_EQ(n["state"], "up");
    EXPECT_GT(n["uptime_ms"].get<std::int64_t>(), 0);
    EXPECT_TRUE(n.contains("capacity"));
  }
  EXPECT_EQ(ids, (std::set<std::string>{"sh-a", "sh-b"}));
  auto pipes = ok("pipelines");
  for (auto p : {"fixable", "waiting", "gated", "long", "listed"}) {
    ASSERT_TRUE(pipes["pipelines"].contains(p)) << pipes.dump();
    EXPECT_EQ(pipes["pipelines"][p]["nodes"], 2) << p;
    EXPECT_EQ(pipes["pipelines"][p]["paused"], false) << p;
  }
  auto [rc, help] = shell("help; help replay");
  EXPECT_EQ(rc, 0);
  ASSERT_EQ(help.size(), 2u);
  EXPECT_GT(help[0]["commands"].size(), 15u);
  EXPECT_EQ(help[1]["command_help"], "replay");
}

TEST_F(shell_test, ADeadLetterIsFoundReplayedAfterTheFixAndKeepsBothLives) {
  auto id = submit("fixable", {{"doc", 1}});
  ASSERT_TRUE(wait_state(id, "dead_lettered"));
  auto dlq = ok("dlq --pipeline fixable");
  bool found = false;
  for (auto& d : dlq["dead_letters"])
    if (d["job_id"] == id) {
      found = true;
      EXPECT_EQ(d["stage"], "work");
      EXPECT_EQ(d["failed_stage"], 1);
      EXPECT_NE(d["last_error"].get<std::string>().find("broken"),
                std::string::npos);
    }
  ASSERT_TRUE(found) << dlq.dump();
  // Replaying before the fix dies again: life 2, still a dead letter.
  write_file(dir_ + "/fixed", "");
  auto replay = ok("replay " + id);
  EXPECT_EQ(replay["life"], 2);
  EXPECT_EQ(replay["from_stage"], 1);
  ASSERT_TRUE(wait_state(id, "succeeded")) << state_of(id);
  auto job = ok("job " + id);
  EXPECT_EQ(job["job"]["state"], "succeeded");
  EXPECT_EQ(job["job"]["life"], 2);
  EXPECT_EQ(job["job"]["result"], (json{{"fixed", true}}));
  ASSERT_EQ(job["stages"].size(), 2u) << job.dump();
  auto& work = job["stages"][1];
  EXPECT_EQ(work["name"], "work");
  ASSERT_EQ(work["attempts"].size(), 2u) << work.dump();
  EXPECT_EQ(work["attempts"][0]["life"], 1);
  EXPECT_EQ(work["attempts"][0]["ok"], false);
  EXPECT_EQ(work["attempts"][0]["error"]["code"], "exit_code");
  EXPECT_EQ(work["attempts"][1]["life"], 2);
  EXPECT_EQ(work["attempts"][1]["ok"], true);
  // The completed first stage was not run again in the second life.
  EXPECT_EQ(job["stages"][0]["attempts"].size(), 1u);
  std::vector<std::string> types;
  for (auto& e : job["events"])
    types.push_back(e["type"]);
  EXPECT_NE(std::find(types.begin(), types.end(), "job.dead_lettered"),
            types.end());
  EXPECT_NE(std::find(types.begin(), types.end(), "job.replayed"), types.end());
  EXPECT_EQ(types.back(), "job.succeeded");
  // It left the dead-letter list; replaying a succeeded job is refused.
  for (auto& d : ok("dlq")["dead_letters"])
    EXPECT_NE(d["job_id"], id);
  auto [rc, docs] = shell("replay " + id);
  EXPECT_EQ(rc, 1);
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0]["error"]["code"], "conflict");
  std::remove((dir_ + "/fixed").c_str());
}

TEST_F(shell_test, ReplayAllReportsHowManyAndRetryStartsFromAStage) {
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i)
    ids.push_back(submit("fixable", {{"bulk", i}}));
  for (auto& id : ids)
    ASSERT_TRUE(wait_state(id, "dead_lettered"));
  auto all = ok("replay --all --pipeline fixable");
  EXPECT_GE(all["replayed"].get<int>(), 3) << all.dump();
  EXPECT_TRUE(all["failed"].empty());
  for (auto& id : ids) // not fixed: each dies again, in life 2
    ASSERT_TRUE(wait_state(id, "dead_lettered"));
  write_file(dir_ + "/fixed", "");
  auto retry = ok("retry " + ids[0] + " --from-stage prepare");
  EXPECT_EQ(retry["from_stage"], 0);
  EXPECT_EQ(retry["life"], 3);
  ASSERT_TRUE(wait_state(ids[0], "succeeded"));
  auto job = ok("job " + ids[0]);
  // prepare ran again in life 3 because the retry started there.
  EXPECT_EQ(job["stages"][0]["attempts"].size(), 2u) << job.dump();
  std::remove((dir_ + "/fixed").c_str());
}

TEST_F(shell_test, CancelReachesAJobWaitingForARetryOnWhicheverNodeHoldsIt) {
  // Several jobs, so that both nodes hold some and the queue group picks
  // the answering node at random: cancels cross nodes.
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i)
    ids.push_back(submit("waiting", {{"i", i}}));
  for (auto& id : ids)
    ASSERT_TRUE(wait_state(id, "retrying"));
  std::set<std::string> holders;
  for (auto& id : ids) {
    auto holder = ok("job " + id)["job"]["lease_owner"].get<std::string>();
    holders.insert(holder);
    auto c = ok("cancel " + id);
    EXPECT_EQ(c["state"], "cancelled") << c.dump();
    EXPECT_EQ(c["was"], "retrying");
    EXPECT_EQ(c["by_node"], holder) << c.dump();
    EXPECT_EQ(state_of(id), "cancelled");
  }
  // The job actors are gone from the live tree.
  auto tree = ok("tree all");
  for (auto& n : tree["nodes"])
    for (auto& p : n["pipelines"])
      if (p["pipeline"] == "waiting") {
        EXPECT_TRUE(p["jobs"].empty()) << p.dump();
      }
  auto [rc, docs] = shell("cancel " + ids[0]);
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(docs.at(0)["error"]["code"], "conflict");
  std::cout << "holders: " << holders.size() << " node(s)\n";
}

TEST_F(shell_test, RetrySkipsTheWaitOfAJobWaitingForItsRetry) {
  auto id = submit("waiting", {{"retry", true}});
  ASSERT_TRUE(wait_state(id, "retrying"));
  auto r = ok("retry " + id);
  EXPECT_EQ(r["action"], "retry_now") << r.dump();
  ASSERT_TRUE(wait_state(id, "succeeded", 20s));
  auto job = ok("job " + id);
  EXPECT_EQ(job["stages"][0]["attempts"].size(), 2u);
}

TEST_F(shell_test, CancelOfAJobStillInTheStreamLeavesATombstone) {
  ok("pause gated");
  auto id = submit("gated", {{"never", "runs"}});
  auto [rc, docs] = shell("cancel " + id);
  EXPECT_EQ(rc, 1) << "no node has seen it: the shell asks for the pipeline";
  EXPECT_NE(
      docs.at(0)["error"]["message"].get<std::string>().find("--pipeline"),
      std::string::npos);
  auto c = ok("cancel " + id + " --pipeline gated");
  EXPECT_EQ(c["was"], "unseen");
  ok("unpause gated");
  // Delivered now, found terminal, acked: it never runs.
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(state_of(id), "cancelled");
  EXPECT_EQ(
      count("select count(*) from job_attempts where job_id = '" + id + "'"),
      0);
}

TEST_F(shell_test, PauseStopsFetchingOnEveryNodeUntilUnpaused) {
  auto p = ok("pause gated");
  EXPECT_EQ(p["paused"], true);
  EXPECT_EQ(p["applied_by"].size(), 2u) << p.dump();
  auto pipes = ok("pipelines");
  EXPECT_EQ(pipes["pipelines"]["gated"]["paused"], true);
  EXPECT_EQ(pipes["pipelines"]["gated"]["paused_on"].size(), 2u)
      << pipes.dump();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i)
    ids.push_back(submit("gated", {{"i", i}}));
  std::this_thread::sleep_for(2s);
  for (auto& id : ids)
    EXPECT_EQ(state_of(id), "") << "a paused pipeline fetched " << id;
  auto u = ok("unpause gated");
  EXPECT_EQ(u["paused"], false);
  for (auto& id : ids)
    EXPECT_TRUE(wait_state(id, "succeeded"));
}

TEST_F(shell_test, TreeShowsARunningJobsStageActor) {
  auto id = submit("long");
  ASSERT_TRUE(wait_state(id, "running"));
  json seen;
  for (int i = 0; i < 40 && seen.is_null(); ++i) {
    auto tree = ok("tree all");
    for (auto& n : tree["nodes"])
      for (auto& p : n["pipelines"])
        for (auto& j : p["jobs"])
          if (j["job_id"] == id && j["stage_actor"].get<std::uint64_t>() > 0)
            seen = j;
    if (seen.is_null())
      std::this_thread::sleep_for(100ms);
  }
  ASSERT_FALSE(seen.is_null());
  EXPECT_EQ(seen["state"], "running");
  EXPECT_EQ(seen["stage"], "nap");
  EXPECT_EQ(seen["attempt"], 1);
  EXPECT_GT(seen["actor"].get<std::uint64_t>(), 0u);
  // The same through one node's own subject.
  auto holder = ok("job " + id)["job"]["lease_owner"].get<std::string>();
  auto one = ok("tree " + holder);
  EXPECT_EQ(one["nodes"][0]["node"], holder);
  ASSERT_TRUE(wait_state(id, "succeeded"));
}

TEST_F(shell_test, WatchStreamsLiveEvents) {
  child_process watcher{{TROUPE_BINARY, "shell", "--nats", servers_->nats_url(),
                         "--json", "-c",
                         "watch --pipeline listed --count 4 --for 30s"},
                        dir_ + "/watch.log"};
  std::this_thread::sleep_for(700ms); // subscribed before the job starts
  auto id = submit("listed");
  ASSERT_EQ(watcher.wait(40s), 0) << watcher.output();
  auto doc = json::parse(watcher.output(), nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << watcher.output();
  ASSERT_EQ(doc["events"].size(), 4u);
  EXPECT_EQ(doc["events"][0]["type"], "job.started");
  EXPECT_EQ(doc["events"][3]["type"], "job.succeeded");
  for (auto& e : doc["events"])
    EXPECT_EQ(e["job_id"], id);
}

TEST_F(shell_test, JobsFilterAndPaginate) {
  std::set<std::string> submitted;
  for (int i = 0; i < 5; ++i)
    submitted.insert(submit("listed", {{"page", i}}));
  for (auto& id : submitted)
    ASSERT_TRUE(wait_state(id, "succeeded"));
  std::set<std::string> listed;
  std::string after;
  int pages = 0;
  do {
    auto page = ok("jobs --pipeline listed --state succeeded --limit 2" +
                   (after.empty() ? "" : " --after " + after));
    ++pages;
    EXPECT_LE(page["jobs"].size(), 2u);
    for (auto& j : page["jobs"]) {
      EXPECT_EQ(j["pipeline"], "listed");
      EXPECT_TRUE(listed.insert(j["job_id"].get<std::string>()).second)
          << "a job on two pages";
    }
    after = page["next"].is_string() ? page["next"].get<std::string>() : "";
  } while (!after.empty() && pages < 20);
  for (auto& id : submitted)
    EXPECT_TRUE(listed.count(id)) << id;
  EXPECT_GE(pages, 3);
  EXPECT_TRUE(ok("jobs --pipeline listed --since 1h")["jobs"].size() >= 5);
  auto stats = ok("stats");
  EXPECT_GE(stats["totals"]["jobs"]["succeeded"].get<int>(), 5);
}

TEST_F(shell_test, MistakesGetAOneLineErrorAndANonZeroExit) {
  auto [rc1, d1] = shell("frobnicate");
  EXPECT_EQ(rc1, 1);
  EXPECT_EQ(d1.at(0)["error"]["code"], "unknown_command");
  auto [rc2, d2] = shell("jobs --colour red");
  EXPECT_EQ(rc2, 1);
  EXPECT_EQ(d2.at(0)["error"]["code"], "bad_flag");
  auto [rc3, d3] = shell("job no-such-job");
  EXPECT_EQ(rc3, 1);
  EXPECT_EQ(d3.at(0)["error"]["code"], "unknown_job");
  EXPECT_NE(d3[0]["error"]["message"].get<std::string>().find("try:"),
            std::string::npos);
  auto [rc4, d4] = shell("jobs --state exploded");
  EXPECT_EQ(rc4, 1);
  EXPECT_EQ(d4.at(0)["error"]["code"], "invalid_request");
  // A failing command does not stop the next one; the exit code reports it.
  auto [rc5, d5] = shell("frobnicate; nodes");
  EXPECT_EQ(rc5, 1);
  ASSERT_EQ(d5.size(), 2u);
  EXPECT_EQ(d5[1]["ok"], true);
  // Unreachable NATS: one clear line, no hang.
  child_process sh{
      {TROUPE_BINARY, "shell", "--nats", "nats://127.0.0.1:1", "-c", "nodes"},
      dir_ + "/unreachable.log"};
  EXPECT_EQ(sh.wait(30s), 1);
  auto out = sh.output();
  EXPECT_NE(out.find("cannot reach NATS at nats://127.0.0.1:1"),
            std::string::npos)
      << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

namespace {

/// Reads from `fd` until `text` appears or `limit` passes; returns all read.
std::string read_until(int fd, const std::string& text,
                       std::chrono::milliseconds limit, std::string& all) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (all.find(text) == std::string::npos &&
         std::chrono::steady_clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0)
      continue;
    char buf[4096];
    auto n = read(fd, buf, sizeof(buf));
    if (n <= 0)
      break;
    all.append(buf, static_cast<std::size_t>(n));
  }
  return all;
}

/// The text a terminal would show, roughly: ANSI escape sequences removed
/// (libedit redraws a completed word with cursor movements).
std::string visible(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\x1b' && i + 1 < s.size() && s[i + 1] == '[') {
      i += 2;
      while (i < s.size() && !(s[i] >= '@' && s[i] <= '~'))
        ++i;
      continue;
    }
    if (s[i] == '\n' || static_cast<unsigned char>(s[i]) >= 0x20)
      out += s[i]; // drops \r and the bell libedit rings on completion
  }
  return out;
}

/// libedit stores history lines with spaces as \040.
std::string unvis(std::string s) {
  for (std::size_t p; (p = s.find("\\040")) != std::string::npos;)
    s.replace(p, 4, " ");
  return s;
}

} // namespace

TEST_F(shell_test, InteractiveModeEditsCompletesAndKeepsHistory) {
  auto history = dir_ + "/history";
  int master = -1;
  pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setenv("TERM", "xterm", 1);
    setenv("TROUPE_SHELL_HISTORY", history.c_str(), 1);
    setenv("TROUPE_NATS_URL", servers_->nats_url().c_str(), 1);
    execl(TROUPE_BINARY, TROUPE_BINARY, "shell", "--no-color",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  std::string all;
  read_until(master, "troupe> ", 20s, all);
  ASSERT_NE(all.find("troupe> "), std::string::npos) << all;
  auto type = [&](const std::string& keys) {
    ASSERT_EQ(write(master, keys.data(), keys.size()),
              static_cast<ssize_t>(keys.size()));
  };
  // Tab completes a command name; the command prints its table.
  type("pipel\t\r");
  read_until(master, "IN FLIGHT", 20s, all);
  EXPECT_NE(visible(all).find("pipelines"), std::string::npos) << all;
  EXPECT_NE(all.find("PIPELINE"), std::string::npos) << all;
  EXPECT_NE(all.find("gated"), std::string::npos) << all;
  // Tab completes a pipeline name after --pipeline.
  all.clear();
  type("jobs --pipeline gat\t\r");
  auto until = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < until &&
         visible(all).find("jobs --pipeline gated") == std::string::npos) {
    std::string more;
    read_until(master, "\n", 200ms, more);
    all += more;
  }
  EXPECT_NE(visible(all).find("jobs --pipeline gated"), std::string::npos)
      << all;
  // Its output (a table, or "no jobs match") ends with the next prompt.
  auto after = [&] {
    auto v = visible(all);
    auto at = v.find("jobs --pipeline gated");
    return at != std::string::npos &&
           v.find("troupe> ", at) != std::string::npos;
  };
  until = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < until && !after()) {
    std::string more;
    read_until(master, "\n", 200ms, more);
    all += more;
  }
  EXPECT_TRUE(after()) << all;
  // An error says what to do and the shell keeps going.
  all.clear();
  type("frobnicate\r");
  read_until(master, "try: help", 20s, all);
  EXPECT_NE(all.find("unknown command 'frobnicate'"), std::string::npos) << all;
  type("quit\r");
  int status = 0;
  for (int i = 0; i < 100 && waitpid(pid, &status, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(100ms);
  if (waitpid(pid, &status, WNOHANG) == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL() << "shell did not quit";
  }
  close(master);
  auto saved = unvis(read_file(history));
  EXPECT_NE(saved.find("pipelines"), std::string::npos) << saved;
  EXPECT_NE(saved.find("jobs --pipeline gated"), std::string::npos) << saved;
}
