// A node as operators and scripts meet it: admin requests (inspect,
// drain, resume), shell scripts reading JSON, and HTTP health, readiness
// and metrics, against the durable path's servers.
#include <csignal>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <thread>
#define PQXX_HAVE_OPTIONAL
#include "child_process.hpp"
#include "messages/errc.hpp"
#include "runtime/client/job_tracker.hpp"
#include "runtime/exec/process.hpp"
#include "runtime/nats/nats_client.hpp"
#include "runtime/pg/migrations.hpp"
#include "tests/runtime/durable_fixture.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/test_servers.hpp"
#include <cstring>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;

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
  // Drain, then resume before the drain finished: the node stays. (With
  // jobs shorter than the time the requests take, the drain could end
  // first, and the node with it: seen under ASan.)
  subjects subj{"troupe"};
  std::vector<std::string> bodies;
  for (int i = 0; i < 40; ++i)
    bodies.push_back(body("lasting", "drain-" + std::to_string(i)));
  ASSERT_TRUE(submit_requests(*nats, subj, bodies, 64, 30s));
  EXPECT_TRUE(ask("troupe.admin.itest-node.control.drain").value("ok", false));
  EXPECT_TRUE(node->wait_for_output("draining on admin request", 10s));
  EXPECT_TRUE(ask("troupe.admin.itest-node.control.resume").value("ok", false));
  EXPECT_TRUE(node->wait_for_output("drain cancelled", 10s)) << node->output();
  test::eventually(
      [&] {
        return count(
                   "select count(*) from jobs where job_id like 'drain-%' and "
                   "state = 'succeeded'") >= 40;
      },
      60s, 100ms);
  EXPECT_EQ(count("select count(*) from jobs where job_id like 'drain-%' and "
                  "state = 'succeeded'"),
            40);
  EXPECT_TRUE(node->running());
  // 1,000 jobs waiting on a 10-minute retry wait in PostgreSQL (longer
  // than node.store_retry_after): the node holds none of them and still
  // answers at once.
  std::vector<std::string> parked;
  for (int i = 0; i < 1000; ++i)
    parked.push_back(body("parked", "parked-" + std::to_string(i)));
  ASSERT_TRUE(submit_requests(*nats, subj, parked, 256, 60s));
  test::eventually(
      [&] {
        return count(
                   "select count(*) from jobs where job_id like 'parked-%' and "
                   "state = 'retrying'") >= 1000;
      },
      60s, 50ms);
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
  EXPECT_EQ(running, 0);
  EXPECT_EQ(count("select count(*) from jobs where job_id like 'parked-%' "
                  "and run_at > now() + interval '5 minutes'"),
            1000);
  std::cout
      << "[ info ] read.stats answered in "
      << std::chrono::duration_cast<std::chrono::microseconds>(took).count()
      << " us with 1000 jobs waiting in the store\n";
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
  // The sweeper's repairs and the API's unlogged submissions: present, and
  // zero on a healthy broker and store.
  for (auto line : {"troupe_sweeper_repairs_total{repair=\"lost_submission_"
                    "republished\"} 0",
                    "troupe_sweeper_repairs_total{repair=\"stuck_consumer_"
                    "moved\"} 0",
                    "troupe_sweeper_repairs_total{repair=\"consumer_"
                    "remade\"} 0",
                    "troupe_submissions_unlogged_total 0"})
    EXPECT_NE(metrics->body.find(line), std::string::npos) << line;
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(30s), 0);
}

// The node guard end to end: one of the node's own actors dies (killed by
// the TROUPE_FAILPOINT_KILL test hook, as a crash would), and the node says
// which, drains and exits with status 3 so that its supervisor restarts it.
TEST_F(durable_path_test, ANodeWhoseOwnActorDiesSaysWhichAndExitsWithStatus3) {
  for (std::string who : {"store", "admin", "pipeline three"}) {
    auto tag = who.substr(0, who.find(' '));
    auto node = start_troupe_node(dir_ + "/node.toml",
                                  dir_ + "/node-kill-" + tag + ".log", {},
                                  {"TROUPE_FAILPOINT_KILL=" + who});
    EXPECT_EQ(node->wait(60s), 3) << who << "\n" << node->output();
    EXPECT_NE(node->output().find(who + " died"), std::string::npos)
        << node->output();
  }
}

namespace {

/// point → µs for each job of a latency probe file ("job point µs" lines).
std::map<std::string, std::map<std::string, long long>>
probe_stamps(const std::string& path) {
  std::map<std::string, std::map<std::string, long long>> out;
  std::istringstream in{read_file(path)};
  std::string job, point;
  long long us = 0;
  while (in >> job >> point >> us)
    out[job].emplace(point, us);
  return out;
}

} // namespace

TEST_F(durable_path_test, TheLatencyProbeStampsEachJobsPathInOrderWhenAsked) {
  // What bench/timeline.hpp reads: with TROUPE_LATENCY_PROBE set, the node
  // writes each job's hand-offs when it stops, in the order they happen.
  auto prefix = dir_ + "/probe-surface";
  auto node = start_troupe_node(dir_ + "/node.toml", dir_ + "/node-probe.log",
                                {}, {"TROUPE_LATENCY_PROBE=" + prefix});
  auto nats = client();
  subjects subj{"troupe"};
  job_tracker tracker{nats, subj, "three"};
  ASSERT_FALSE(tracker.start());
  std::vector<std::string> bodies;
  for (int i = 0; i < 5; ++i) {
    bodies.push_back(body("three", "probe-" + std::to_string(i)));
    tracker.submitted("probe-" + std::to_string(i));
  }
  ASSERT_TRUE(submit_requests(*nats, subj, bodies, 1, 30s));
  ASSERT_TRUE(tracker.wait_all(60s, {}));
  node->signal(SIGTERM);
  ASSERT_EQ(node->wait(30s), 0) << node->output();

  auto stamps = probe_stamps(prefix + "." + std::to_string(node->pid()));
  // Each point after the one before it; the API's publish and the intake's
  // fetch race, so each is only after the presence read.
  const std::vector<std::vector<const char*>> chains{
      {"api.received", "api.routed", "api.checked", "api.published",
       "api.logged"},
      {"api.checked", "intake.fetched", "intake.checked", "store.received",
       "store.begun", "store.committed", "events.published"},
  };
  for (int i = 0; i < 5; ++i) {
    auto key = "probe-" + std::to_string(i);
    ASSERT_TRUE(stamps.count(key)) << key;
    const auto& s = stamps[key];
    for (const auto& chain : chains)
      for (std::size_t k = 0; k < chain.size(); ++k) {
        ASSERT_TRUE(s.count(chain[k])) << key << " has no " << chain[k];
        if (k > 0) {
          EXPECT_LE(s.at(chain[k - 1]), s.at(chain[k]))
              << key << ": " << chain[k - 1] << " after " << chain[k];
        }
      }
  }
}

TEST_F(durable_path_test,
       ALatencyProbeFileThatCannotBeWrittenIsLoggedNotFatal) {
  // A probe naming a directory that does not exist: jobs run as ever, the
  // node stops cleanly and says why there is no file.
  auto node = start_troupe_node(
      dir_ + "/node.toml", dir_ + "/node-probe-bad.log", {},
      {"TROUPE_LATENCY_PROBE=" + dir_ + "/no-such-dir/probe"});
  auto nats = client();
  subjects subj{"troupe"};
  job_tracker tracker{nats, subj, "three"};
  ASSERT_FALSE(tracker.start());
  tracker.submitted("probe-bad-1");
  ASSERT_TRUE(
      submit_requests(*nats, subj, {body("three", "probe-bad-1")}, 1, 30s));
  ASSERT_TRUE(tracker.wait_all(60s, {}));
  EXPECT_EQ(tracker.jobs()["probe-bad-1"].state, "succeeded");
  node->signal(SIGTERM);
  ASSERT_EQ(node->wait(30s), 0) << node->output();
  EXPECT_NE(node->output().find("latency probe: cannot write"),
            std::string::npos)
      << node->output();
  EXPECT_EQ(count("select count(*) from jobs where job_id = 'probe-bad-1' "
                  "and state = 'succeeded'"),
            1);
}
