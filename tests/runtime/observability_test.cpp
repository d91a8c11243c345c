// What an operator watches, checked against a real node with real servers:
// readiness following PostgreSQL down and back, metrics that parse and match
// a run of known jobs, structured job log lines, secrets that never leak,
// and retention pruning finished jobs while keeping dead letters.
#include <csignal>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#define PQXX_HAVE_OPTIONAL
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "child_process.hpp"
#include "messages/errc.hpp"
#include "runtime/client/job_tracker.hpp"
#include "runtime/exec/process.hpp"
#include "runtime/nats/nats_client.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/test_servers.hpp"

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

// Both servers run without authentication here, so these passwords are
// ignored by them; what matters is that troupe never prints them.
const char* pg_secret = "Pg-s3cret-Xq71";
const char* nats_secret = "Nats-s3cret-Zr92";

class observability_test : public ::testing::Test {
public:
  static void SetUpTestSuite() {
    servers_ = new test_servers();
    dir_ = servers_->dir();
  }

  static void TearDownTestSuite() {
    delete servers_;
    servers_ = nullptr;
  }

  /// The test servers' URLs with a password added.
  static std::string pg_url_with_secret() {
    auto url = servers_->pg_url(); // postgresql://postgres@127.0.0.1:P/db
    auto at = url.find('@');
    return url.substr(0, at) + ":" + pg_secret + url.substr(at);
  }

  static std::string nats_url_with_secret() {
    auto url = servers_->nats_url(); // nats://127.0.0.1:P
    return "nats://troupe:" + std::string{nats_secret} + "@" +
           url.substr(std::strlen("nats://"));
  }

  static std::string config(const std::string& id, const std::string& extra) {
    return R"([node]
id = ")" + id +
           R"("
http = "127.0.0.1:0"
drain_grace = "2s"

[nats]
url = ")" + nats_url_with_secret() +
           R"("

[postgres]
url = ")" + pg_url_with_secret() +
           R"("

[pipelines.known]
max_in_flight = 200
stages = [
  { name = "first", kind = "noop" },
  { name = "check", kind = "fault", poison_key = "poison",
    retry = { max_attempts = 2, initial = "10ms", jitter = "none" } },
]
)" + extra;
  }

  std::unique_ptr<child_process>
  start_node(const std::string& id, const std::string& extra = "",
             std::vector<std::string> args = {}) {
    write_file(dir_ + "/" + id + ".toml", config(id, extra));
    std::vector<std::string> argv{TROUPE_BINARY, "node", "--config",
                                  dir_ + "/" + id + ".toml"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto node = std::make_unique<child_process>(argv, dir_ + "/" + id + ".log");
    EXPECT_TRUE(node->wait_for_output("http on", 60s)) << node->output();
    return node;
  }

  static int http_port(const child_process& node) {
    auto log = node.output();
    auto at = log.find("http on 127.0.0.1:");
    if (at == std::string::npos)
      return 0;
    return std::atoi(log.c_str() + at + std::strlen("http on 127.0.0.1:"));
  }

  static std::int64_t count(const std::string& sql) {
    pqxx::connection c{servers_->pg_url()};
    pqxx::nontransaction n{c};
    return n.exec1(sql)[0].as<std::int64_t>();
  }

  static std::shared_ptr<nats_client> client() {
    nats_connect_options o;
    o.urls = servers_->nats_url();
    auto c = nats_client::connect(o);
    EXPECT_TRUE(c);
    return *c;
  }

  /// Polls /readyz until `want` (status word) or the limit.
  static json await_ready(httplib::Client& http, const std::string& want,
                          std::chrono::seconds limit) {
    json last;
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (auto r = http.Get("/readyz")) {
        last = json::parse(r->body, nullptr, false);
        last["http_status"] = r->status;
        if (last.value("status", "") == want)
          return last;
      }
      std::this_thread::sleep_for(200ms);
    }
    return last;
  }

  static test_servers* servers_;
  static std::string dir_;
};

test_servers* observability_test::servers_ = nullptr;
std::string observability_test::dir_;

} // namespace

TEST_F(observability_test, ReadinessFollowsPostgresDownAndBack) {
  auto node = start_node("obs-ready");
  httplib::Client http{"127.0.0.1", http_port(*node)};
  http.set_read_timeout(10, 0);
  auto ok = await_ready(http, "healthy", 30s);
  ASSERT_EQ(ok.value("status", ""), "healthy") << ok.dump();
  EXPECT_EQ(ok["http_status"], 200);
  for (auto dep : {"nats", "jetstream", "postgres"}) {
    EXPECT_EQ(ok["checks"][dep]["status"], "up") << dep;
    EXPECT_TRUE(ok["checks"][dep]["latency_ms"].is_number()) << dep;
  }
  EXPECT_EQ(ok["checks"]["jetstream"]["consumers"]["known"]["status"], "up");
  EXPECT_EQ(ok["checks"]["postgres"]["schema_version"],
            ok["checks"]["postgres"]["schema_expected"]);
  servers_->pg().stop();
  auto down = await_ready(http, "degraded", 60s);
  ASSERT_EQ(down.value("status", ""), "degraded") << down.dump();
  EXPECT_EQ(down["http_status"], 503);
  EXPECT_EQ(down["checks"]["postgres"]["status"], "down");
  EXPECT_EQ(down["checks"]["nats"]["status"], "up");
  EXPECT_EQ(down.dump().find(pg_secret), std::string::npos) << down.dump();
  ASSERT_FALSE(servers_->pg().start(dir_, servers_->pg_port()));
  auto back = await_ready(http, "healthy", 60s);
  EXPECT_EQ(back.value("status", ""), "healthy") << back.dump();
  EXPECT_EQ(back["http_status"], 200);
  EXPECT_TRUE(node->running());
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(30s), 0);
}

// Found by the chaos suite (seed 1): a write that failed in an outage marked
// the store unhealthy, the node stopped fetching, so no write came to find
// PostgreSQL back, and the node stayed degraded for good.
TEST_F(observability_test, ANodeWhoseWriteFailedInAnOutageRecoversIdle) {
  auto node = start_node("obs-idle");
  httplib::Client http{"127.0.0.1", http_port(*node)};
  http.set_read_timeout(10, 0);
  ASSERT_EQ(await_ready(http, "healthy", 30s).value("status", ""), "healthy");
  servers_->pg().stop();
  auto nats = client();
  // Published straight to the stream (the API refuses while PostgreSQL is
  // down): the node's claim of it is the write that fails.
  auto seq =
      nats->js_publish("troupe.jobs.known", R"({"payload": {}})", "idle-1");
  ASSERT_TRUE(seq) << troupe::describe(seq.error());
  ASSERT_TRUE(node->wait_for_output("PostgreSQL unreachable", 30s))
      << node->output();
  ASSERT_FALSE(servers_->pg().start(dir_, servers_->pg_port()));
  auto back = await_ready(http, "healthy", 30s);
  EXPECT_EQ(back.value("status", ""), "healthy") << back.dump();
  EXPECT_TRUE(eventually([&] {
    return count("select count(*) from jobs where job_id = 'idle-1' and "
                 "state = 'succeeded'") == 1;
  })) << node->output();
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(30s), 0);
}

TEST_F(observability_test, MetricsParseAndMatchARunOfKnownJobs) {
  auto node = start_node("obs-metrics", "", {"--log-format", "json"});
  auto nats = client();
  subjects subj{"troupe"};
  std::vector<std::string> bodies;
  for (int i = 0; i < 100; ++i) {
    json payload{{"i", i}};
    if (i % 14 == 3)
      payload["poison"] = true; // 3, 17, 31, 45, 59, 73, 87: seven
    bodies.push_back(json{{"pipeline", "known"},
                          {"payload", payload},
                          {"key", "k-" + std::to_string(i)}}
                         .dump());
  }
  auto replies = submit_requests(*nats, subj, bodies, 50, 60s);
  ASSERT_TRUE(replies);
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from jobs where job_id like 'k-%' and "
                 "state in ('succeeded', 'dead_lettered')") == 100;
  }));
  // Job metrics come from events, which follow the commits: wait until the
  // last ones are counted (a fixed pause was too short under ASan).
  httplib::Client http{"127.0.0.1", http_port(*node)};
  auto counted = [](const std::string& body, const std::string& state, int n) {
    auto want = "state=\"" + state + "\"} " + std::to_string(n);
    std::istringstream lines{body};
    for (std::string line; std::getline(lines, line);)
      if (line.rfind("troupe_jobs_total{", 0) == 0 &&
          line.find("pipeline=\"known\"") != std::string::npos &&
          line.size() >= want.size() &&
          line.compare(line.size() - want.size(), want.size(), want) == 0)
        return true;
    return false;
  };
  EXPECT_TRUE(eventually(
      [&] {
        auto m = http.Get("/metrics");
        return m && m->status == 200 && counted(m->body, "succeeded", 93) &&
               counted(m->body, "dead_lettered", 7);
      },
      30s));
  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  ASSERT_EQ(metrics->status, 200);
  write_file(dir_ + "/known-metrics.txt", metrics->body);
  // An independent parser (Debian's python3-prometheus-client) reads every
  // family and prints the samples we check.
  auto parsed = run_command(
      {"/usr/bin/python3", "-c",
       "import sys\n"
       "from prometheus_client.parser import text_string_to_metric_families\n"
       "v = {}\n"
       "for f in text_string_to_metric_families(open(sys.argv[1]).read()):\n"
       "  for s in f.samples:\n"
       "    if s.labels.get('pipeline') in ('known', None):\n"
       "      k = s.name + ''.join(sorted('|%s=%s' % kv for kv in "
       "s.labels.items()\n"
       "                                  if kv[0] != 'pipeline'))\n"
       "      v[k] = s.value\n"
       "for k in sorted(v): print(k, int(v[k]))\n",
       dir_ + "/known-metrics.txt"},
      30s);
  ASSERT_EQ(parsed.exit_code, 0) << parsed.output << metrics->body;
  std::map<std::string, long> values;
  {
    std::istringstream lines{parsed.output};
    std::string key;
    long v = 0;
    while (lines >> key >> v)
      values[key] = v;
  }
  auto value = [&](const std::string& key) -> long {
    auto it = values.find(key);
    return it == values.end() ? -1 : it->second;
  };
  EXPECT_EQ(value("troupe_jobs_submitted_total"), 100) << parsed.output;
  EXPECT_EQ(value("troupe_jobs_started_total"), 100) << parsed.output;
  EXPECT_EQ(value("troupe_jobs_total|state=succeeded"), 93) << parsed.output;
  EXPECT_EQ(value("troupe_jobs_total|state=dead_lettered"), 7) << parsed.output;
  EXPECT_EQ(value("troupe_job_latency_seconds_count|state=succeeded"), 93);
  EXPECT_EQ(value("troupe_job_latency_seconds_count|state=dead_lettered"), 7);
  EXPECT_EQ(value("troupe_stage_attempts_total|outcome=succeeded|stage=first"),
            100);
  EXPECT_EQ(value("troupe_stage_attempts_total|outcome=failed|stage=check"), 7);
  EXPECT_EQ(value("troupe_stage_attempt_duration_seconds_count|stage=check"),
            100);
  EXPECT_EQ(value("troupe_jobs_waiting_retry"), 0);
  EXPECT_EQ(value("troupe_jetstream_pending"), 0);
  EXPECT_GE(value("troupe_store_batch_size_count"), 1);
  EXPECT_EQ(value("troupe_cluster_members|state=up"), 1);
  // Every dead letter is logged as one JSON line with the job's fields.
  std::istringstream log{node->output()};
  int dead_lines = 0;
  for (std::string line; std::getline(log, line);) {
    auto j = json::parse(line, nullptr, false);
    if (j.is_discarded() || j.value("event", "") != "job.dead_lettered")
      continue;
    ++dead_lines;
    EXPECT_EQ(j["level"], "warning");
    EXPECT_EQ(j["pipeline"], "known");
    EXPECT_EQ(j["stage"], "check");
    EXPECT_EQ(j["attempt"], "1");
    EXPECT_EQ(j["node"], "obs-metrics");
    EXPECT_EQ(j["error_code"], "bad_input");
    EXPECT_TRUE(j.contains("correlation_id"));
    EXPECT_EQ(j["job_id"].get<std::string>().rfind("k-", 0), 0u);
    EXPECT_EQ(line.find("\"poison\""), std::string::npos)
        << "payloads stay out of logs";
  }
  EXPECT_EQ(dead_lines, 7) << node->output();
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(30s), 0);
}

TEST_F(observability_test, SecretsInUrlsNeverAppearInAnyOutput) {
  auto node = start_node("obs-secret", "", {"--log-level", "debug"});
  httplib::Client http{"127.0.0.1", http_port(*node)};
  std::string seen;
  for (auto path : {"/readyz", "/metrics", "/healthz"})
    if (auto r = http.Get(path))
      seen += r->body;
  child_process sh{{TROUPE_BINARY, "shell", "--nats", nats_url_with_secret(),
                    "-c", "nodes; stats; frobnicate"},
                   dir_ + "/secret-shell.log"};
  sh.wait(30s);
  seen += sh.output();
  // A shell that cannot connect names the server, not the password.
  child_process bad{
      {TROUPE_BINARY, "shell", "--nats",
       "nats://troupe:" + std::string{nats_secret} + "@127.0.0.1:1", "-c",
       "nodes"},
      dir_ + "/secret-bad.log"};
  EXPECT_EQ(bad.wait(30s), 1);
  EXPECT_NE(bad.output().find("nats://troupe:***@127.0.0.1:1"),
            std::string::npos)
      << bad.output();
  seen += bad.output();
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(30s), 0);
  seen += node->output();
  EXPECT_NE(node->output().find("troupe:***@"), std::string::npos)
      << "the log shows the redacted URLs";
  EXPECT_EQ(seen.find(pg_secret), std::string::npos) << seen;
  EXPECT_EQ(seen.find(nats_secret), std::string::npos) << seen;
}

TEST_F(observability_test, RetentionPrunesFinishedJobsAndKeepsDeadLetters) {
  auto node = start_node("obs-retention",
                         "\n[retention]\nfinished = \"1h\"\ninterval = \"1h\"\n"
                         "batch = 7\n");
  auto nats = client();
  subjects subj{"troupe"};
  std::vector<std::string> bodies;
  for (int i = 0; i < 30; ++i) {
    json payload{{"i", i}};
    if (i < 4)
      payload["poison"] = true;
    bodies.push_back(json{{"pipeline", "known"},
                          {"payload", payload},
                          {"key", "old-" + std::to_string(i)}}
                         .dump());
  }
  ASSERT_TRUE(submit_requests(*nats, subj, bodies, 30, 60s));
  auto end = std::chrono::steady_clock::now() + 60s;
  while (count("select count(*) from jobs where job_id like 'old-%' and state "
               "in ('succeeded', 'dead_lettered')") < 30 &&
         std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(50ms);
  {
    // Age them: they finished two hours ago.
    pqxx::connection c{servers_->pg_url()};
    pqxx::work w{c};
    w.exec("update jobs set finished_at = now() - interval '2 hours' "
           "where job_id like 'old-%'");
    w.commit();
  }
  int calls = 0;
  auto shell = [&](const std::string& cmds) {
    child_process sh{{TROUPE_BINARY, "shell", "--nats", servers_->nats_url(),
                      "--json", "-c", cmds},
                     dir_ + "/retention-shell-" + std::to_string(++calls) +
                         ".log"};
    EXPECT_EQ(sh.wait(30s), 0) << sh.output();
    return json::parse(sh.output(), nullptr, false);
  };
  auto preview = shell("retention");
  ASSERT_FALSE(preview.is_discarded());
  json known;
  for (auto& p : preview["policies"])
    if (p["pipeline"] == "known")
      known = p;
  EXPECT_EQ(known["due"], 26) << preview.dump();
  EXPECT_EQ(known["keep_ms"], 3600000);
  EXPECT_GE(preview["dead_letters_kept"].get<int>(), 4);
  // Nothing was deleted by looking.
  EXPECT_EQ(count("select count(*) from jobs where job_id like 'old-%'"), 30);
  // Jobs of a pipeline this node does not run, whose own nodes keep them a
  // week (their policy, recorded in pipeline_retention): this node's 1 h
  // default used to prune them.
  {
    pqxx::connection c{servers_->pg_url()};
    pqxx::work w{c};
    w.exec("insert into pipeline_retention (pipeline, keep_ms, node) values "
           "('elsewhere', 604800000, 'other-node')");
    w.exec("insert into jobs (job_id, pipeline, state, payload, finished_at) "
           "select 'far-' || i, 'elsewhere', 'succeeded', '1', now() - "
           "interval '2 hours' from generate_series(1, 5) i");
    w.commit();
  }
  EXPECT_EQ(count("select keep_ms from pipeline_retention where pipeline = "
                  "'known'"),
            3600000); // this node recorded its own policy at start
  auto pruned = shell("prune");
  EXPECT_EQ(pruned["pruned"], 26) << pruned.dump();
  EXPECT_EQ(count("select count(*) from jobs where job_id like 'far-%'"), 5);
  EXPECT_EQ(count("select count(*) from jobs where job_id like 'old-%'"), 4);
  EXPECT_EQ(count("select count(*) from jobs where job_id like 'old-%' and "
                  "state = 'dead_lettered'"),
            4);
  EXPECT_EQ(count("select count(*) from job_events e where job_id like 'old-%' "
                  "and not exists (select 1 from jobs j where j.job_id = "
                  "e.job_id)"),
            0);
  EXPECT_EQ(count("select count(*) from stage_checkpoints where job_id like "
                  "'old-%'"),
            4); // the dead letters' first stage
  // A dead letter goes only when an operator purges it.
  auto purge = shell("purge old-0");
  EXPECT_EQ(purge["purged"], true) << purge.dump();
  EXPECT_EQ(count("select count(*) from jobs where job_id = 'old-0'"), 0);
  EXPECT_EQ(count("select count(*) from job_attempts where job_id = 'old-0'"),
            0);
  EXPECT_EQ(count("select count(*) from job_events where job_id = 'old-0'"), 0);
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(30s), 0);
}

TEST_F(observability_test,
       AnUnreachableDependencyStopsStartUpWithOneClearLine) {
  // PostgreSQL on a port where nothing listens: bounded retries, then exit 2
  // with one critical line naming the server (password redacted).
  auto port = free_port();
  auto cfg = config("obs-nopg", "\n");
  auto at = cfg.find(std::to_string(servers_->pg_port()));
  ASSERT_NE(at, std::string::npos);
  cfg.replace(at, std::to_string(servers_->pg_port()).size(),
              std::to_string(port));
  cfg.replace(cfg.find("drain_grace"), 0, "startup_timeout = \"1s\"\n");
  write_file(dir_ + "/nopg.toml", cfg);
  child_process node{{TROUPE_BINARY, "node", "--config", dir_ + "/nopg.toml"},
                     dir_ + "/nopg.log"};
  EXPECT_EQ(node.wait(60s), 2) << node.output();
  auto out = node.output();
  auto critical = out.find(
      "cannot start: PostgreSQL at postgresql://postgres:***@127.0.0.1:" +
      std::to_string(port));
  EXPECT_NE(critical, std::string::npos) << out;
  EXPECT_EQ(out.find("cannot start", critical + 1), std::string::npos) << out;
  EXPECT_EQ(out.find(pg_secret), std::string::npos) << out;
  EXPECT_EQ(out.find(": ready"), std::string::npos) << out;
}

// Chaos seed 3: a node restarted while JetStream had no quorum was still
// waiting for it when the harness stopped the cluster, and exited 2 as if
// it had failed. Asked to stop during start-up, a node stops: exit 0.
TEST_F(observability_test, AStopRequestedDuringStartUpIsACleanStop) {
  auto port = free_port();
  auto cfg = config("obs-stopearly", "\n");
  auto at = cfg.find(std::to_string(servers_->pg_port()));
  ASSERT_NE(at, std::string::npos);
  cfg.replace(at, std::to_string(servers_->pg_port()).size(),
              std::to_string(port));
  cfg.replace(cfg.find("drain_grace"), 0, "startup_timeout = \"60s\"\n");
  write_file(dir_ + "/stopearly.toml", cfg);
  child_process node{
      {TROUPE_BINARY, "node", "--config", dir_ + "/stopearly.toml"},
      dir_ + "/stopearly.log"};
  ASSERT_TRUE(eventually(
      [&] { return node.output().find("not ready yet") != std::string::npos; },
      30s));
  node.signal(SIGTERM);
  EXPECT_EQ(node.wait(30s), 0) << node.output();
  EXPECT_NE(node.output().find("stopped before it started"), std::string::npos)
      << node.output();
}
