#include "config/config_loader.hpp"

#include <map>

#include <unistd.h>

#include <gtest/gtest.h>

#include "tests/config/config_test_support.hpp"

using namespace troupe;
using namespace troupe::test;
using std::chrono::milliseconds;

TEST(Duration, ParsesEveryUnit) {
  EXPECT_EQ(parse_duration("250ms"), milliseconds{250});
  EXPECT_EQ(parse_duration("3s"), milliseconds{3000});
  EXPECT_EQ(parse_duration("1.5s"), milliseconds{1500});
  EXPECT_EQ(parse_duration("5m"), milliseconds{300000});
  EXPECT_EQ(parse_duration("2h"), milliseconds{7200000});
  EXPECT_EQ(parse_duration("0s"), milliseconds{0});
  EXPECT_EQ(parse_duration("0.25s"), milliseconds{250});
  EXPECT_EQ(parse_duration("0.001s"), milliseconds{1});
}

TEST(Duration, FormattedDurationsParseBack) {
  for (auto ms : {0, 1, 999, 1000, 1500, 60000, 61000, 3600000, 5400000})
    EXPECT_EQ(parse_duration(format_duration(milliseconds{ms})),
              milliseconds{ms})
        << ms;
}

TEST(Duration, RejectsMalformedText) {
  for (auto bad : {"", "3", "s", "3 s", "3sec", "-1s", "1.2.3s", "ms5", ".s",
                   "1.5ms", "+3s", " 3s"})
    EXPECT_FALSE(parse_duration(bad)) << bad;
}

TEST(Duration, FormatsInTheLargestExactUnit) {
  EXPECT_EQ(format_duration(milliseconds{3000}), "3s");
  EXPECT_EQ(format_duration(milliseconds{1500}), "1500ms");
  EXPECT_EQ(format_duration(milliseconds{300000}), "5m");
  EXPECT_EQ(format_duration(milliseconds{7200000}), "2h");
  EXPECT_EQ(format_duration(milliseconds{0}), "0s");
}

TEST(ConfigLoader, TheExampleFileIsValid) {
  auto r = load_config_file(TROUPE_SOURCE_DIR "/config/troupe.example.toml");
  for (auto& p : r.problems)
    ADD_FAILURE() << p.to_string();
  ASSERT_TRUE(r.ok());
  auto& cfg = *r.config;
  EXPECT_EQ(cfg.node.id, "node-1");
  ASSERT_EQ(cfg.pipelines.count("demo"), 1u);
  auto& demo = cfg.pipelines.at("demo");
  EXPECT_EQ(demo.max_in_flight, 200);
  ASSERT_EQ(demo.stages.size(), 4u);
  auto& t = demo.stages[1];
  EXPECT_EQ(t.kind, "fault");
  EXPECT_EQ(t.retry.max_attempts, 4);
  EXPECT_EQ(t.retry.initial, milliseconds{50});
  EXPECT_EQ(t.retry.max, milliseconds{1000});
  EXPECT_EQ(t.retry.jitter, jitter_kind::full);
  EXPECT_DOUBLE_EQ(t.params.at("probability").get<double>(), 0.1);
  EXPECT_EQ(demo.stages[0].params.at("duration"), "20ms");
  auto& ingest = cfg.pipelines.at("ingest");
  ASSERT_EQ(ingest.stages.size(), 3u);
  EXPECT_EQ(ingest.stages[0].timeout, milliseconds{30000});
  EXPECT_EQ(ingest.stages[0].params.at("command")[0],
            "examples/shell/fetch.sh");
  EXPECT_EQ(ingest.stages[0].retry.non_retryable,
            std::vector<std::string>{"bad_input"});
  EXPECT_EQ(ingest.stages[1].retry.max_attempts, 1);
  EXPECT_GT(ingest.stages[1].line, ingest.stages[0].line);
}

TEST(ConfigLoader, OmittedKeysKeepTheirDefaults) {
  auto r = parse(minimal);
  ASSERT_TRUE(r.ok());
  const troupe_config defaults;
  auto& cfg = *r.config;
  EXPECT_EQ(cfg.node.http, defaults.node.http);
  EXPECT_EQ(cfg.nats.url, defaults.nats.url);
  EXPECT_EQ(cfg.nats.ack_wait, defaults.nats.ack_wait);
  EXPECT_EQ(cfg.postgres.url, defaults.postgres.url);
  EXPECT_EQ(cfg.cluster.failure_timeout, defaults.cluster.failure_timeout);
  auto& stage = cfg.pipelines.at("p").stages.at(0);
  EXPECT_EQ(stage.timeout, milliseconds{0});
  EXPECT_EQ(stage.retry.max_attempts, 3);
  EXPECT_EQ(stage.retry.jitter, jitter_kind::full);
  EXPECT_EQ(stage.line, 5);
  EXPECT_EQ(cfg.source, "t.toml");
}

TEST(ConfigLoader, ReportsEveryProblemWithItsLocation) {
  // Two kinds stand for a binary's catalogue (tests/runtime checks the
  // real one): `teleport` is unknown.
  config_context ctx;
  ctx.stage_kinds = {{"sleep", {{"duration", param_type::duration, true}}},
                     {"noop", {}}};
  auto r = load_config_file(TROUPE_SOURCE_DIR "/config/bad.example.toml", ctx);
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.problems.size(), 5u);
  const std::vector<std::pair<int, std::string>> expected = {
      {4, "node.max_inflight"},
      {7, "nats.url"},
      {8, "nats.ack_wait"},
      {13, "pipelines.ingest.stages[1].retry.multiplier"},
      {14, "pipelines.ingest.stages[2].kind"},
  };
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(r.problems[i].line, expected[i].first) << i;
    EXPECT_EQ(r.problems[i].path, expected[i].second) << i;
  }
  EXPECT_EQ(r.problems[0].message, "unknown key");
  EXPECT_EQ(r.problems[3].message, "must be >= 1.0 (got 0.5)");
  EXPECT_NE(r.problems[3].to_string().find("bad.example.toml:13: "),
            std::string::npos);
}

TEST(ConfigLoader, ReportsUnknownKeysAtEveryLevel) {
  auto r = parse(R"(
nodes = 1
[node]
max_inflight = 10
[nats]
urls = "nats://x:4222"
[postgres]
pool = 1
[cluster]
heartbeat = "1s"
[pipelines.p]
stage = []
stages = [ { name = "a", kind = "noop", retry = { attempts = 2 } } ]
)");
  std::vector<std::string> got;
  for (auto& p : r.problems)
    got.push_back(std::to_string(p.line) + " " + p.path + ": " + p.message);
  EXPECT_EQ(got, (std::vector<std::string>{
                     "2 nodes: unknown key",
                     "4 node.max_inflight: unknown key",
                     "6 nats.urls: unknown key",
                     "8 postgres.pool: unknown key",
                     "10 cluster.heartbeat: unknown key",
                     "12 pipelines.p.stage: unknown key",
                     "13 pipelines.p.stages[0].retry.attempts: unknown key",
                 }));
}

TEST(ConfigLoader, RejectsOutOfRangeValuesAndBadNames) {
  auto r = parse(R"(
[node]
http = "9464"
log_level = "loud"
[nats]
url = "nats://a:4222, http://b:4222"
prefix = "troupe.jobs"
max_payload = 0
replicas = 2
[postgres]
url = "mysql://db/x"
pool_size = 0
batch_max = -1
[pipelines."a.b"]
stages = []
[pipelines.p]
stages = [ { name = "a", kind = "noop",
             retry = { max_attempts = 0, initial = "1m", max = "1s",
                       jitter = "half" } } ]
[pipelines.q]
max_in_flight = 1
)");
  std::vector<std::string> paths;
  for (auto& p : r.problems)
    paths.push_back(p.path);
  EXPECT_EQ(paths, (std::vector<std::string>{
                       "node.http",
                       "node.log_level",
                       "nats.url",
                       "nats.prefix",
                       "nats.max_payload",
                       "nats.replicas",
                       "postgres.url",
                       "postgres.pool_size",
                       "postgres.batch_max",
                       "pipelines.\"a.b\"",
                       "pipelines.\"a.b\".stages",
                       "pipelines.p.stages[0].retry.max_attempts",
                       "pipelines.p.stages[0].retry.initial",
                       "pipelines.p.stages[0].retry.jitter",
                       "pipelines.q",
                   }));
}

TEST(ConfigLoader, StagesMayBeWrittenAsArraysOfTables) {
  auto r = parse(R"(
[pipelines.p]
max_in_flight = 7

[[pipelines.p.stages]]
name = "wait"
kind = "sleep"
duration = "1.5s"

[[pipelines.p.stages]]
name = "run"
kind = "exec"
command = ["bin/run", "--fast"]
retry.max_attempts = 5
)");
  ASSERT_TRUE(r.ok()) << r.problems.at(0).to_string();
  auto& p = r.config->pipelines.at("p");
  EXPECT_EQ(p.max_in_flight, 7);
  ASSERT_EQ(p.stages.size(), 2u);
  EXPECT_EQ(p.stages[0].line, 5);
  EXPECT_EQ(p.stages[1].line, 10);
  EXPECT_EQ(p.stages[0].params.at("duration"), "1.5s");
  EXPECT_EQ(p.stages[1].retry.max_attempts, 5);
  EXPECT_FALSE(p.stages[1].params.contains("retry"));
}

TEST(ConfigLoader, TypeErrorsSayWhatWasExpected) {
  auto r = parse(R"(
[node]
max_in_flight = "many"
[pipelines.p]
max_in_flight = 0
stages = [ { name = "a", kind = "noop", timeout = 30 } ]
)");
  ASSERT_EQ(r.problems.size(), 3u);
  EXPECT_EQ(r.problems[0].message, "must be an integer, got a string");
  EXPECT_EQ(r.problems[1].path, "pipelines.p.max_in_flight");
  EXPECT_EQ(r.problems[2].path, "pipelines.p.stages[0].timeout");
}

TEST(ConfigLoader, SyntaxErrorsCarryTheirLine) {
  auto r = parse("[node]\nid = \"x\"\nbroken = = 1\n");
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].line, 3);
  EXPECT_NE(r.problems[0].message.find("TOML syntax error"), std::string::npos);
}

TEST(ConfigLoader, UnreadableFileIsOneProblem) {
  auto r = load_config_file("/nonexistent/troupe.toml");
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_NE(r.problems[0].message.find("cannot read file"), std::string::npos);
}

TEST(ConfigLoader, RetentionMetricsAndStartUpKeysAreReadAndChecked) {
  auto r = parse(R"(
[node]
id = "n1"
metrics = false
startup_timeout = "5s"
[retention]
finished = "2d"
interval = "30s"
batch = 50
[pipelines.p]
retention = "12h"
stages = [ { name = "a", kind = "noop" } ]
[pipelines.q]
stages = [ { name = "a", kind = "noop" } ]
)");
  for (auto& p : r.problems)
    ADD_FAILURE() << p.to_string();
  ASSERT_TRUE(r.ok());
  auto& cfg = *r.config;
  EXPECT_FALSE(cfg.node.metrics);
  EXPECT_EQ(cfg.node.startup_timeout, milliseconds{5000});
  EXPECT_EQ(cfg.retention.finished, milliseconds{2LL * 24 * 3600 * 1000});
  EXPECT_EQ(cfg.retention.interval, milliseconds{30000});
  EXPECT_EQ(cfg.retention.batch, 50);
  EXPECT_EQ(cfg.pipelines.at("p").retention, milliseconds{12 * 3600 * 1000});
  EXPECT_FALSE(cfg.pipelines.at("q").retention.has_value());
  auto bad = parse(R"(
[node]
metrics = "yes"
[retention]
interval = "10ms"
batch = 0
keep = "1d"
[pipelines.p]
stages = [ { name = "a", kind = "noop" } ]
)");
  ASSERT_EQ(bad.problems.size(), 4u);
  EXPECT_NE(
      bad.problems[0].to_string().find("node.metrics: must be true or false"),
      std::string::npos)
      << bad.problems[0].to_string();
}

TEST(ConfigLoader, SpeculationWindowsAreReadAndCapped) {
  auto r = parse(R"(
[node]
id = "n1"
speculate = "50ms"
[pipelines.careful]
speculate = "0s"
stages = [ { name = "a", kind = "noop" } ]
[pipelines.usual]
stages = [ { name = "a", kind = "noop" } ]
)");
  for (auto& p : r.problems)
    ADD_FAILURE() << p.to_string();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->node.speculate, milliseconds{50});
  EXPECT_EQ(r.config->pipelines.at("careful").speculate, milliseconds{0});
  EXPECT_FALSE(r.config->pipelines.at("usual").speculate.has_value());
  EXPECT_EQ(troupe::troupe_config{}.node.speculate, milliseconds{20});
  auto bad = parse(R"(
[node]
id = "n1"
speculate = "5s"
[pipelines.p]
speculate = "2s"
stages = [ { name = "a", kind = "noop" } ]
)");
  ASSERT_EQ(bad.problems.size(), 2u);
  EXPECT_NE(
      bad.problems[0].to_string().find("node.speculate: must be at most 1s"),
      std::string::npos)
      << bad.problems[0].to_string();
  EXPECT_NE(bad.problems[1].to_string().find(
                "pipelines.p.speculate: must be at most 1s"),
            std::string::npos)
      << bad.problems[1].to_string();
}

TEST(ConfigLoader, SchedulerPollsAreACountWithinRange) {
  EXPECT_EQ(troupe::troupe_config{}.node.scheduler_polls, 0);
  auto r = parse("[node]\nid = \"n1\"\nscheduler_polls = 500\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->node.scheduler_polls, 500);
  for (const char* v : {"-1", "100001", "\"many\"", "1.5"}) {
    auto bad = parse(std::string{"[node]\nid = \"n1\"\nscheduler_polls = "} +
                     v + "\n");
    ASSERT_EQ(bad.problems.size(), 1u) << v;
    EXPECT_EQ(bad.problems[0].path, "node.scheduler_polls") << v;
  }
}

TEST(ConfigLoader, TheSchedulerPolicyIsAutoUnlessNamed) {
  troupe::troupe_config defaults;
  EXPECT_EQ(defaults.node.scheduler, "auto");
  // auto: one shared queue on small machines, work stealing on large ones
  // (docs/benchmarks.md, session 25); scheduler_threads counts, not cores.
  EXPECT_EQ(troupe::scheduler_policy(defaults.node, 2), "sharing");
  EXPECT_EQ(troupe::scheduler_policy(defaults.node, 4), "sharing");
  EXPECT_EQ(troupe::scheduler_policy(defaults.node, 16), "stealing");
  auto few = defaults.node;
  few.scheduler_threads = 2;
  EXPECT_EQ(troupe::scheduler_policy(few, 16), "sharing");
  for (const char* v : {"stealing", "sharing"}) {
    auto r =
        parse(std::string{"[node]\nid = \"n1\"\nscheduler = \""} + v + "\"\n");
    ASSERT_TRUE(r.ok()) << v;
    EXPECT_EQ(troupe::scheduler_policy(r.config->node, 2), v);
    EXPECT_EQ(troupe::scheduler_policy(r.config->node, 64), v);
  }
  auto bad = parse("[node]\nid = \"n1\"\nscheduler = \"fastest\"\n");
  ASSERT_EQ(bad.problems.size(), 1u);
  EXPECT_EQ(bad.problems[0].path, "node.scheduler");
  EXPECT_NE(bad.problems[0].to_string().find("\"auto\", \"stealing\" or"),
            std::string::npos)
      << bad.problems[0].to_string();
}

TEST(ConfigLoader, SendAsapIsABoolean) {
  auto r = parse(R"(
[node]
id = "n1"
[nats]
send_asap = true
[pipelines.p]
stages = [ { name = "a", kind = "noop" } ]
)");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.config->nats.send_asap);
  EXPECT_FALSE(troupe::troupe_config{}.nats.send_asap);
  auto bad = parse(R"(
[node]
id = "n1"
[nats]
send_asap = "yes"
[pipelines.p]
stages = [ { name = "a", kind = "noop" } ]
)");
  ASSERT_EQ(bad.problems.size(), 1u);
  EXPECT_NE(bad.problems[0].to_string().find("nats.send_asap"),
            std::string::npos)
      << bad.problems[0].to_string();
}

TEST(ConfigLoader, NonAsciiOutsideStringsIsAProblemNotACrash) {
  for (const char* text : {"\xd1\x8c", "\xc3\xa9 = 1\n",
                           "[pipelines.caf\xc3\xa9]\n"
                           "stages = [ { name = \"a\", kind = \"noop\" } ]\n",
                           "s = \"\"\"\\\n\xc2\xa7\"\"\"\n"}) {
    auto r = parse(text);
    EXPECT_FALSE(r.ok()) << text;
    EXPECT_FALSE(r.problems.empty()) << text;
  }
}

TEST(ConfigLoader, AnOtlpEndpointMustBeAPlainHttpHostAndPort) {
  auto ok = parse(R"(
[node]
id = "n1"
otlp_endpoint = "http://127.0.0.1:4318"
)");
  for (auto& p : ok.problems)
    ADD_FAILURE() << p.to_string();
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.config->node.otlp_endpoint, "http://127.0.0.1:4318");
  for (auto bad :
       {"https://collector:4318", "http://collector", "http://:4318",
        "http://collector:99999", "collector:4318", "http://collector:43x8"}) {
    auto r = parse(std::string{"[node]\nid = \"n1\"\notlp_endpoint = \""} +
                   bad + "\"\n");
    ASSERT_EQ(r.problems.size(), 1u) << bad;
    EXPECT_NE(r.problems[0].to_string().find("node.otlp_endpoint: must be"),
              std::string::npos)
        << r.problems[0].to_string();
  }
}
