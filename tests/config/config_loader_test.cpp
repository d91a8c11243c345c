#include "config/config_loader.hpp"

#include <map>

#include <gtest/gtest.h>

using namespace troupe;
using std::chrono::milliseconds;

namespace {

env_lookup fake_env(std::map<std::string, std::string> vars) {
  return [vars](const char* name) -> std::optional<std::string> {
    if (auto i = vars.find(name); i != vars.end())
      return i->second;
    return std::nullopt;
  };
}

config_result parse(const std::string& text, config_context ctx = {}) {
  return parse_config(text, "t.toml", ctx);
}

const char* minimal = R"(
[node]
id = "n1"
[pipelines.p]
stages = [ { name = "a", kind = "noop" } ]
)";

} // namespace

TEST(Duration, ParsesEveryUnit) {
  EXPECT_EQ(parse_duration("250ms"), milliseconds{250});
  EXPECT_EQ(parse_duration("3s"), milliseconds{3000});
  EXPECT_EQ(parse_duration("1.5s"), milliseconds{1500});
  EXPECT_EQ(parse_duration("5m"), milliseconds{300000});
  EXPECT_EQ(parse_duration("2h"), milliseconds{7200000});
  EXPECT_EQ(parse_duration("0s"), milliseconds{0});
}

TEST(Duration, RejectsMalformedText) {
  for (auto bad : {"", "3", "s", "3 s", "3sec", "-1s", "1.2.3s", "ms5"})
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
  ASSERT_EQ(demo.stages.size(), 3u);
  auto& t = demo.stages[1];
  EXPECT_EQ(t.kind, "fault");
  EXPECT_EQ(t.retry.max_attempts, 4);
  EXPECT_EQ(t.retry.initial, milliseconds{50});
  EXPECT_EQ(t.retry.max, milliseconds{1000});
  EXPECT_EQ(t.retry.jitter, jitter_kind::full);
  EXPECT_DOUBLE_EQ(t.params.at("probability").get<double>(), 0.1);
  EXPECT_EQ(demo.stages[0].params.at("duration"), "20ms");
  EXPECT_EQ(cfg.pipelines.at("ingest").stages[0].timeout, milliseconds{30000});
}

TEST(ConfigLoader, ReportsEveryProblemWithItsLocation) {
  auto r = load_config_file(TROUPE_SOURCE_DIR "/config/bad.example.toml");
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.problems.size(), 5u);
  EXPECT_EQ(r.problems[0].line, 4);
  EXPECT_EQ(r.problems[0].path, "node.max_inflight");
  EXPECT_EQ(r.problems[1].path, "nats.url");
  EXPECT_EQ(r.problems[2].path, "nats.ack_wait");
  EXPECT_EQ(r.problems[3].line, 13);
  EXPECT_EQ(r.problems[3].path, "pipelines.ingest.stages[1].retry.multiplier");
  EXPECT_EQ(r.problems[3].message, "must be >= 1.0 (got 0.5)");
  EXPECT_EQ(r.problems[4].path, "pipelines.ingest.stages[2].kind");
  EXPECT_NE(r.problems[3].to_string().find("bad.example.toml:13: "),
            std::string::npos);
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

TEST(ConfigLoader, StagesAreCheckedPerKind) {
  auto r = parse(R"(
[pipelines.p]
stages = [
  { name = "a", kind = "sleep" },
  { name = "b", kind = "exec", command = [] },
  { name = "c", kind = "fault", probability = 2.0 },
  { name = "c", kind = "noop", colour = "red" },
]
)");
  std::vector<std::string> paths;
  for (auto& p : r.problems)
    paths.push_back(p.path + " " + p.message);
  ASSERT_EQ(r.problems.size(), 5u) << ::testing::PrintToString(paths);
  EXPECT_NE(r.problems[0].message.find("needs duration"), std::string::npos);
  EXPECT_EQ(r.problems[1].path, "pipelines.p.stages[1].command");
  EXPECT_EQ(r.problems[2].path, "pipelines.p.stages[2].probability");
  EXPECT_NE(r.problems[3].message.find("duplicate stage name"),
            std::string::npos);
  EXPECT_EQ(r.problems[4].path, "pipelines.p.stages[3].colour");
}

TEST(ConfigLoader, KindParamsBecomeJson) {
  auto r = parse(R"(
[pipelines.p]
stages = [ { name = "x", kind = "exec", command = ["a", "b"], env = { K = "v" },
             retryable_exit_codes = [75, 3] } ]
)");
  ASSERT_TRUE(r.ok()) << r.problems[0].to_string();
  auto& params = r.config->pipelines.at("p").stages[0].params;
  EXPECT_EQ(params.at("command").size(), 2u);
  EXPECT_EQ(params.at("env").at("K"), "v");
  EXPECT_EQ(params.at("retryable_exit_codes")[1], 3);
}

TEST(ConfigLoader, EnvironmentOverridesWinAndAreValidated) {
  config_context ctx;
  ctx.env = fake_env({{"TROUPE_NATS_URL", "nats://10.0.0.1:4222"},
                      {"TROUPE_NODE_ID", "from-env"},
                      {"TROUPE_HTTP_ADDR", "127.0.0.1:9999"}});
  auto r = parse(minimal, ctx);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->nats.url, "nats://10.0.0.1:4222");
  EXPECT_EQ(r.config->node.id, "from-env");
  EXPECT_EQ(r.config->node.http, "127.0.0.1:9999");
  ctx.env = fake_env({{"TROUPE_PG_URL", "mysql://x"}});
  r = parse(minimal, ctx);
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].file, "env:TROUPE_PG_URL");
}

TEST(ConfigLoader, PasswordsNeverAppearInProblems) {
  auto r = parse(R"(
[postgres]
url = "mysql://troupe:s3cret@127.0.0.1/x"
[nats]
url = "http://user:hunter2@127.0.0.1:4222"
)");
  ASSERT_EQ(r.problems.size(), 2u);
  for (auto& p : r.problems) {
    EXPECT_EQ(p.to_string().find("s3cret"), std::string::npos);
    EXPECT_EQ(p.to_string().find("hunter2"), std::string::npos);
    EXPECT_NE(p.to_string().find("***"), std::string::npos);
  }
}

TEST(ConfigLoader, UnreadableFileIsOneProblem) {
  auto r = load_config_file("/nonexistent/troupe.toml");
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_NE(r.problems[0].message.find("cannot read file"), std::string::npos);
}

TEST(ConfigLoader, NodeIdDefaultsToTheHostName) {
  auto r =
      parse("[pipelines.p]\nstages = [{ name = \"a\", kind = \"noop\" }]\n");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.config->node.id.empty());
}
