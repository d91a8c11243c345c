// The durable path end to end: a real `troupe node` process, a real
// nats-server with JetStream and a real PostgreSQL, driven the way outside
// publishers drive it (NATS request/reply and JetStream publishes).
#include <csignal>
#include <memory>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <thread>

#define PQXX_HAVE_OPTIONAL
#include <cstring>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "child_process.hpp"
#include "messages/errc.hpp"
#include "runtime/client/job_tracker.hpp"
#include "runtime/exec/process.hpp"
#include "runtime/nats/nats_client.hpp"
#include "runtime/pg/migrations.hpp"
#include "tests/support/test_servers.hpp"

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;

namespace {

// One exec stage that sleeps, then records its idempotency key: in a table
// with a unique constraint (the side effect, de-duplicated as a real
// service would), and in a plain table (every completed run).
const char* side_effect_script = R"SH(#!/bin/sh
input=$(cat)
key=$(printf '%s' "$input" | sed -n 's/.*"idempotency_key":"\([^"]*\)".*/\1/p')
sleep "${SLEEP:-0.2}"
psql "$PGURL" -qAt -v ON_ERROR_STOP=1 \
  -c "insert into side_effects(key) values ('$key') on conflict do nothing" \
  -c "insert into stage_runs(key) values ('$key')" >/dev/null || exit 75
echo '{"recorded":"'"$key"'"}'
)SH";

class durable_path_test : public ::testing::Test {
public:
  static void SetUpTestSuite() {
    servers_ = new test_servers();
    dir_ = servers_->dir();
    pqxx::connection c{servers_->pg_url()};
    pqxx::work w{c};
    w.exec("create table if not exists side_effects(key text primary key)");
    w.exec("create table if not exists stage_runs(key text not null)");
    w.commit();
    write_file(dir_ + "/side_effect.sh", side_effect_script);
    chmod((dir_ + "/side_effect.sh").c_str(), 0755);
    write_file(dir_ + "/node.toml", config_text());
  }

  static void TearDownTestSuite() {
    delete servers_;
    servers_ = nullptr;
  }

  static std::string config_text() {
    auto script = dir_ + "/side_effect.sh";
    return R"([node]
id = "itest-node"
http = "127.0.0.1:0"
max_in_flight = 1000
drain_grace = "3s"

[nats]
url = ")" + servers_->nats_url() +
           R"("
ack_wait = "5s"
max_payload = 65536
unrouted_sweep = "1s"

[postgres]
url = ")" + servers_->pg_url() +
           R"("

[pipelines.three]
max_in_flight = 500
stages = [
  { name = "a", kind = "noop" },
  { name = "b", kind = "noop" },
  { name = "c", kind = "noop" },
]

[pipelines.compact]
stages = [
  { name = "check", kind = "exec", command = ["/bin/sh", "-c", "grep -q '\"payload\":{\"path\":\"x\"}' && echo '{}'"] },
]

[pipelines.steady]
max_in_flight = 100
stages = [
  { name = "one", kind = "sleep", duration = "250ms" },
  { name = "two", kind = "sleep", duration = "250ms" },
]

[pipelines.parked]
max_in_flight = 2000
stages = [
  { name = "flaky", kind = "fault", fail_first = 1,
    retry = { max_attempts = 3, initial = "10m", max = "10m", jitter = "none" } },
]

[pipelines.slow]
max_in_flight = 200
stages = [
  { name = "s1", kind = "exec", command = [")" +
           script + R"("], env = { PGURL = ")" + servers_->pg_url() +
           R"(" }, timeout = "20s" },
  { name = "s2", kind = "exec", command = [")" +
           script + R"("], env = { PGURL = ")" + servers_->pg_url() +
           R"(" }, timeout = "20s" },
]
)";
  }

  std::unique_ptr<child_process> start_node(const std::string& tag) {
    auto node = std::make_unique<child_process>(
        std::vector<std::string>{TROUPE_BINARY, "node", "--config",
                                 dir_ + "/node.toml"},
        dir_ + "/node-" + tag + ".log");
    EXPECT_TRUE(node->wait_for_output("ready", 60s)) << node->output();
    return node;
  }

  std::shared_ptr<nats_client> client() {
    nats_connect_options o;
    o.urls = servers_->nats_url();
    auto c = nats_client::connect(o);
    EXPECT_TRUE(c) << describe(c.error());
    return *c;
  }

  static std::int64_t count(const std::string& sql) {
    pqxx::connection c{servers_->pg_url()};
    pqxx::nontransaction n{c};
    return n.exec1(sql)[0].as<std::int64_t>();
  }

  static std::string body(const std::string& pipeline, const std::string& key,
                          nlohmann::json payload = {{"n", 1}}) {
    nlohmann::json j{{"pipeline", pipeline}, {"payload", payload}};
    if (!key.empty())
      j["key"] = key;
    return j.dump();
  }

  static test_servers* servers_;
  static std::string dir_;
};

test_servers* durable_path_test::servers_ = nullptr;
std::string durable_path_test::dir_;

} // namespace

TEST_F(durable_path_test, AThousandJobsReachExactlyOneTerminalStateEach) {
  auto node = start_node("thousand");
  auto nats = client();
  subjects subj{"troupe"};
  job_tracker tracker{nats, subj, "three"};
  ASSERT_FALSE(tracker.start());
  std::vector<std::string> bodies;
  for (int i = 0; i < 1000; ++i)
    bodies.push_back(body("three", ""));
  auto replies = submit_requests(*nats, subj, bodies, 256, 60s);
  ASSERT_TRUE(replies) << describe(replies.error());
  std::set<std::string> ids;
  for (auto& r : *replies) {
    ASSERT_TRUE(r.ok) << r.error_code << ": " << r.error_message;
    ids.insert(r.job_id);
    tracker.submitted(r.job_id);
  }
  EXPECT_EQ(ids.size(), 1000u);
  ASSERT_TRUE(tracker.wait_all(120s, {})) << node->output();
  int succeeded = 0;
  for (auto& [id, j] : tracker.jobs())
    succeeded += j.state == "succeeded";
  EXPECT_EQ(succeeded, 1000);
  // The database, the events and the replies agree.
  EXPECT_EQ(count("select count(*) from jobs where pipeline = 'three'"), 1000);
  EXPECT_EQ(count("select count(*) from jobs where pipeline = 'three' and "
                  "state = 'succeeded'"),
            1000);
  EXPECT_EQ(count("select count(*) from stage_checkpoints s join jobs j using "
                  "(job_id) where j.pipeline = 'three'"),
            3000);
  EXPECT_EQ(count("select count(*) from job_events e join jobs j using "
                  "(job_id) where j.pipeline = 'three' and e.type = "
                  "'job.succeeded'"),
            1000);
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(30s), 0) << node->output();
}

TEST_F(durable_path_test, StagesSeeThePayloadInCompactJson) {
  // A resumed job's payload comes back from PostgreSQL's jsonb, which
  // prints with spaces; scripts must see the same bytes either way.
  auto node = start_node("compact");
  auto nats = client();
  subjects subj{"troupe"};
  job_tracker tracker{nats, subj, "compact"};
  ASSERT_FALSE(tracker.start());
  auto replies = submit_requests(
      *nats, subj, {body("compact", "compact-1", {{"path", "x"}})}, 1, 30s);
  ASSERT_TRUE(replies && (*replies)[0].ok);
  tracker.submitted("compact-1");
  ASSERT_TRUE(tracker.wait_all(60s, {}));
  EXPECT_EQ(tracker.jobs()["compact-1"].state, "succeeded")
      << tracker.jobs()["compact-1"].error;
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(30s), 0);
}

TEST_F(durable_path_test, TheSameKeySubmittedThreeTimesIsOneJobRunOnce) {
  auto node = start_node("idem");
  auto nats = client();
  subjects subj{"troupe"};
  job_tracker tracker{nats, subj, "three"};
  ASSERT_FALSE(tracker.start());
  std::vector<std::string> bodies(3, body("three", "order-42"));
  auto replies = submit_requests(*nats, subj, bodies, 1, 30s);
  ASSERT_TRUE(replies);
  for (auto& r : *replies) {
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.job_id, "order-42");
  }
  tracker.submitted("order-42");
  ASSERT_TRUE(tracker.wait_all(60s, {}));
  std::this_thread::sleep_for(1s); // let any duplicate delivery show up
  EXPECT_EQ(count("select count(*) from jobs where job_id = 'order-42'"), 1);
  EXPECT_EQ(count("select count(*) from job_attempts where job_id = "
                  "'order-42'"),
            3);
  EXPECT_EQ(count("select count(*) from job_events where job_id = "
                  "'order-42' and type = 'job.started'"),
            1);
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(30s), 0);
}

TEST_F(durable_path_test, AKilledNodeLosesNothingAndRunsNoCompletedStageTwice) {
  auto node = start_node("kill-1");
  auto nats = client();
  subjects subj{"troupe"};
  job_tracker tracker{nats, subj, "slow"};
  ASSERT_FALSE(tracker.start());
  std::vector<std::string> bodies;
  for (int i = 0; i < 200; ++i)
    bodies.push_back(body("slow", "slow-" + std::to_string(i)));
  auto replies = submit_requests(*nats, subj, bodies, 256, 60s);
  ASSERT_TRUE(replies);
  for (auto& r : *replies) {
    ASSERT_TRUE(r.ok);
    tracker.submitted(r.job_id);
  }
  // Kill it mid-pipeline: once some first stages completed.
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (count("select count(*) from stage_checkpoints where job_id like "
               "'slow-%'") < 60 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  node->signal(SIGKILL);
  EXPECT_EQ(node->wait(10s), 128 + SIGKILL);
  auto done_before = count("select count(*) from jobs where job_id like "
                           "'slow-%' and state = 'succeeded'");
  EXPECT_LT(done_before, 200) << "the kill came too late to test anything";
  auto node2 = start_node("kill-2");
  // The database decides: an event may be lost with the killed node (it
  // publishes after the commit), a terminal row may not.
  deadline = std::chrono::steady_clock::now() + 180s;
  while (count("select count(*) from jobs where job_id like 'slow-%' and "
               "state in ('succeeded', 'dead_lettered', 'cancelled')") < 200 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(100ms);
  EXPECT_EQ(count("select count(*) from jobs where job_id like 'slow-%' and "
                  "state = 'succeeded'"),
            200);
  // Every stage's side effect happened exactly once...
  EXPECT_EQ(count("select count(*) from side_effects where key like "
                  "'slow-%'"),
            400);
  // ...and no stage whose success was recorded ran again.
  EXPECT_EQ(count("select count(*) from (select job_id, stage_index from "
                  "job_attempts where job_id like 'slow-%' and ok group by "
                  "job_id, stage_index having count(*) > 1) d"),
            0);
  std::cout << "[ info ] killed with " << done_before
            << " of 200 jobs done; completed runs recorded: "
            << count("select count(*) from stage_runs where key like "
                     "'slow-%'")
            << " for 400 stages\n";
  node2->signal(SIGTERM);
  EXPECT_EQ(node2->wait(30s), 0);
}

TEST_F(durable_path_test, BadInputIsRejectedClearlyAndTheNodeKeepsServing) {
  auto node = start_node("bad");
  auto nats = client();
  subjects subj{"troupe"};
  std::vector<std::string> bodies = {
      "{not json",
      body("nope", ""),
      body("three", "", {{"blob", std::string(70000, 'x')}}),
  };
  auto replies = submit_requests(*nats, subj, bodies, 3, 30s);
  ASSERT_TRUE(replies);
  EXPECT_EQ((*replies)[0].error_code, "invalid_payload");
  EXPECT_EQ((*replies)[1].error_code, "unknown_pipeline");
  EXPECT_NE((*replies)[1].error_message.find("nope"), std::string::npos);
  EXPECT_EQ((*replies)[2].error_code, "payload_too_large");
  // Published straight to the stream: recorded and dead-lettered.
  ASSERT_TRUE(nats->js_publish("troupe.jobs.three", "{not json", "bad-json"));
  ASSERT_TRUE(nats->js_publish(
      "troupe.jobs.three", body("", "", {{"blob", std::string(66000, 'x')}}),
      "bad-size"));
  job_tracker tracker{nats, subj, "three"};
  ASSERT_FALSE(tracker.start());
  tracker.submitted("bad-json");
  tracker.submitted("bad-size");
  ASSERT_TRUE(nats->js_publish("troupe.jobs.three",
                               R"({"payload":{"fine":true}})", "good-after"));
  tracker.submitted("good-after");
  // For a pipeline no node runs: swept and dead-lettered, not left behind.
  job_tracker nope{nats, subj, "nope"};
  ASSERT_FALSE(nope.start());
  nope.submitted("bad-pipeline");
  ASSERT_TRUE(
      nats->js_publish("troupe.jobs.nope", R"({"payload":1})", "bad-pipeline"));
  ASSERT_TRUE(tracker.wait_all(60s, {})) << node->output();
  ASSERT_TRUE(nope.wait_all(60s, {})) << node->output();
  EXPECT_EQ(nope.jobs()["bad-pipeline"].state, "dead_lettered");
  EXPECT_EQ(count("select count(*) from jobs where job_id = 'bad-pipeline' "
                  "and pipeline = 'nope' and last_error like "
                  "'unknown_pipeline: no node runs pipeline%'"),
            1);
  auto jobs = tracker.jobs();
  EXPECT_EQ(jobs["bad-json"].state, "dead_lettered");
  EXPECT_EQ(jobs["bad-size"].state, "dead_lettered");
  EXPECT_EQ(jobs["good-after"].state, "succeeded");
  EXPECT_EQ(count("select count(*) from jobs where job_id = 'bad-json' and "
                  "state = 'dead_lettered' and last_error like "
                  "'invalid_payload%'"),
            1);
  EXPECT_EQ(count("select count(*) from dead_letters where job_id in "
                  "('bad-json', 'bad-size')"),
            2);
  EXPECT_TRUE(node->running());
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(30s), 0);
}

TEST_F(durable_path_test, ASecondNodeWithALiveNodesIdIsRefused) {
  auto node = start_node("id-1");
  child_process twin{{TROUPE_BINARY, "node", "--config", dir_ + "/node.toml"},
                     dir_ + "/node-id-2.log"};
  EXPECT_EQ(twin.wait(60s), 2) << twin.output();
  EXPECT_NE(twin.output().find("node id 'itest-node' is already in use"),
            std::string::npos)
      << twin.output();
  EXPECT_TRUE(node->running());
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(30s), 0);
}

TEST_F(durable_path_test, PostgresAndNatsOutagesDelayJobsButLoseNone) {
  auto node = start_node("outage");
  auto nats = client();
  subjects subj{"troupe"};
  std::vector<std::string> bodies;
  for (int i = 0; i < 300; ++i)
    bodies.push_back(body("steady", "steady-" + std::to_string(i)));
  auto replies = submit_requests(*nats, subj, bodies, 256, 60s);
  ASSERT_TRUE(replies);
  for (auto& r : *replies)
    ASSERT_TRUE(r.ok);
  auto terminal = [] {
    return count("select count(*) from jobs where job_id like 'steady-%' "
                 "and state in ('succeeded', 'dead_lettered', 'cancelled')");
  };
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (terminal() < 50 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  // PostgreSQL goes away for a while: stages keep finishing, their commits
  // wait; nothing is dropped.
  auto before = terminal();
  servers_->pg().stop();
  std::this_thread::sleep_for(3s);
  ASSERT_FALSE(servers_->pg().start(dir_, servers_->pg_port()));
  // Then NATS restarts (JetStream keeps the stream on disk).
  std::this_thread::sleep_for(1s);
  servers_->nats().stop();
  std::this_thread::sleep_for(2s);
  ASSERT_FALSE(servers_->nats().start(dir_, servers_->nats_port()));
  deadline = std::chrono::steady_clock::now() + 180s;
  while (terminal() < 300 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(100ms);
  std::cout << "[ info ] outages began with " << before
            << " of 300 jobs done\n";
  EXPECT_LT(before, 300) << "the outage came too late to test anything";
  EXPECT_EQ(count("select count(*) from jobs where job_id like 'steady-%' "
                  "and state = 'succeeded'"),
            300)
      << node->output();
  EXPECT_EQ(count("select count(*) from (select job_id, stage_index from "
                  "job_attempts where job_id like 'steady-%' and ok group by "
                  "job_id, stage_index having count(*) > 1) d"),
            0);
  EXPECT_TRUE(node->running());
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(60s), 0) << node->output();
}

TEST_F(durable_path_test, AdminRequestsInspectDrainAndResumeANode) {
  auto node = start_node("admin");
  auto nats = client();
  auto ask = [&](const std::string& subject) {
    auto r = nats->request(subject, "", 5000);
    EXPECT_TRUE(r) << subject << ": " << describe(r.error());
    return r ? nlohmann::json::parse(*r) : nlohmann::json{};
  };
  auto nodes = ask("troupe.admin.itest-node.read.nodes");
  ASSERT_TRUE(nodes.value("ok", false)) << nodes.dump();
  ASSERT_GE(nodes["result"].size(), 1u);
  EXPECT_EQ(nodes["result"][0]["node_id"], "itest-node");
  EXPECT_EQ(nodes["result"][0]["state"], "up");
  EXPECT_EQ(nodes["result"][0]["health"], "healthy");
  auto stats = ask("troupe.admin.all.read.stats");
  ASSERT_TRUE(stats.value("ok", false)) << stats.dump();
  EXPECT_EQ(stats["node"], "itest-node");
  auto wrong = ask("troupe.admin.itest-node.read.drain");
  EXPECT_FALSE(wrong.value("ok", true));
  EXPECT_NE(
      wrong["error"]["message"].get<std::string>().find("is a control verb"),
      std::string::npos);
  // Drain, then resume before the drain finished: the node stays.
  subjects subj{"troupe"};
  std::vector<std::string> bodies;
  for (int i = 0; i < 40; ++i)
    bodies.push_back(body("steady", "drain-" + std::to_string(i)));
  ASSERT_TRUE(submit_requests(*nats, subj, bodies, 64, 30s));
  EXPECT_TRUE(ask("troupe.admin.itest-node.control.drain").value("ok", false));
  EXPECT_TRUE(node->wait_for_output("draining on admin request", 10s));
  EXPECT_TRUE(ask("troupe.admin.itest-node.control.resume").value("ok", false));
  EXPECT_TRUE(node->wait_for_output("drain cancelled", 10s)) << node->output();
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (count("select count(*) from jobs where job_id like 'drain-%' and "
               "state = 'succeeded'") < 40 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(100ms);
  EXPECT_EQ(count("select count(*) from jobs where job_id like 'drain-%' and "
                  "state = 'succeeded'"),
            40);
  EXPECT_TRUE(node->running());
  // 1,000 jobs parked on a 10-minute retry cost timers, not threads: the
  // node still answers at once.
  std::vector<std::string> parked;
  for (int i = 0; i < 1000; ++i)
    parked.push_back(body("parked", "parked-" + std::to_string(i)));
  ASSERT_TRUE(submit_requests(*nats, subj, parked, 256, 60s));
  deadline = std::chrono::steady_clock::now() + 60s;
  while (count("select count(*) from jobs where job_id like 'parked-%' and "
               "state = 'retrying'") < 1000 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(count("select count(*) from jobs where job_id like 'parked-%' "
                  "and state = 'retrying'"),
            1000);
  auto t0 = std::chrono::steady_clock::now();
  auto busy = ask("troupe.admin.itest-node.read.stats");
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(busy.value("ok", false)) << busy.dump();
  std::int64_t running = 0;
  for (auto& p : busy["result"])
    if (p["pipeline"] == "parked")
      running = p["running"].get<std::int64_t>();
  EXPECT_EQ(running, 1000);
  std::cout
      << "[ info ] read.stats answered in "
      << std::chrono::duration_cast<std::chrono::microseconds>(took).count()
      << " us with 1000 jobs parked\n";
  // A drain that runs to its end: the node leaves and exits cleanly (the
  // parked jobs are handed back to the broker after the grace period).
  EXPECT_TRUE(ask("troupe.admin.all.control.drain").value("ok", false));
  EXPECT_EQ(node->wait(60s), 0) << node->output();
}

TEST_F(durable_path_test, ShellScriptsSeeTheClusterAsJson) {
  auto node = start_node("shell");
  auto run_shell = [&](const std::string& cmds, const std::string& tag) {
    child_process sh{{TROUPE_BINARY, "shell", "--nats", servers_->nats_url(),
                      "--json", "-c", cmds},
                     dir_ + "/shell-" + tag + ".log"};
    auto rc = sh.wait(30s);
    return std::make_pair(rc, sh.output());
  };
  auto [rc, out] = run_shell("nodes; stats", "ok");
  ASSERT_EQ(rc, 0) << out;
  std::istringstream lines{out};
  std::string first, second;
  std::getline(lines, first);
  std::getline(lines, second);
  auto nodes = nlohmann::json::parse(first, nullptr, false);
  auto stats = nlohmann::json::parse(second, nullptr, false);
  ASSERT_FALSE(nodes.is_discarded()) << out;
  ASSERT_FALSE(stats.is_discarded()) << out;
  ASSERT_EQ(nodes["nodes"].size(), 1u) << out;
  EXPECT_EQ(nodes["nodes"][0]["node_id"], "itest-node");
  EXPECT_EQ(nodes["nodes"][0]["state"], "up");
  EXPECT_TRUE(stats["pipelines"].contains("three")) << out;
  auto [bad_rc, bad_out] = run_shell("frobnicate", "bad");
  EXPECT_EQ(bad_rc, 1);
  EXPECT_NE(bad_out.find("unknown command 'frobnicate'"), std::string::npos)
      << bad_out;
  auto [drain_rc, drain_out] = run_shell("drain itest-node", "drain");
  EXPECT_EQ(drain_rc, 0) << drain_out;
  EXPECT_EQ(node->wait(60s), 0) << node->output();
}

TEST_F(durable_path_test, HttpServesHealthReadinessAndValidMetrics) {
  auto node = start_node("http");
  ASSERT_TRUE(node->wait_for_output("/healthz /readyz /metrics", 10s));
  auto log = node->output();
  auto at = log.find("http on 127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << log;
  int port = std::atoi(log.c_str() + at + std::strlen("http on 127.0.0.1:"));
  ASSERT_GT(port, 0);
  httplib::Client http{"127.0.0.1", port};
  auto health = http.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto ready = http.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;
  auto doc = nlohmann::json::parse(ready->body, nullptr, false);
  EXPECT_EQ(doc["status"], "healthy") << ready->body;
  EXPECT_EQ(doc["checks"]["postgres"]["status"], "up");
  EXPECT_EQ(doc["checks"]["postgres"]["schema_version"], latest_schema_version);
  // Run a few jobs so that counters move, then check the exposition with an
  // independent parser (Debian's python3-prometheus-client).
  auto nats = client();
  subjects subj{"troupe"};
  std::vector<std::string> bodies(5, body("three", ""));
  ASSERT_TRUE(submit_requests(*nats, subj, bodies, 5, 30s));
  std::this_thread::sleep_for(1s);
  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  write_file(dir_ + "/metrics.txt", metrics->body);
  auto parsed = run_command(
      {"/usr/bin/python3", "-c",
       "import sys\n"
       "from prometheus_client.parser import text_string_to_metric_families\n"
       "fams = {f.name: f for f in text_string_to_metric_families("
       "open(sys.argv[1]).read())}\n"
       "done = [s.value for s in fams['troupe_jobs_finished'].samples\n"
       "        if s.labels == {'pipeline': 'three', 'state': 'succeeded'}]\n"
       "print(len(fams), int(done[0]))\n",
       dir_ + "/metrics.txt"},
      30s);
  ASSERT_EQ(parsed.exit_code, 0) << parsed.output << metrics->body;
  int families = 0, done = 0;
  std::sscanf(parsed.output.c_str(), "%d %d", &families, &done);
  EXPECT_GE(families, 8) << parsed.output;
  EXPECT_GE(done, 5) << parsed.output;
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(30s), 0);
}
