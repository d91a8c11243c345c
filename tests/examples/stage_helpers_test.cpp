// The stage helpers of examples/stages (Python and sh), used by real exec
// stages on a real node: progress with details that the retry resumes
// from, exit 75 retried, a permanent failure dead-lettered with its
// message, stdout kept for the output alone.
#include <csignal>

#include <gtest/gtest.h>

#include "tests/runtime/child_process.hpp"
#include "tests/support/db_probe.hpp"
#include "tests/support/test_servers.hpp"

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;

namespace {

const std::string src = TROUPE_SOURCE_DIR;

std::string config() {
  return R"([node]
http = "127.0.0.1:0"
speculate = "0s"
[pipelines.helpers]
stages = [
  { name = "py", kind = "exec", command = ["/usr/bin/python3", ")" +
         src + R"(/tests/examples/stages/py_stage.py"],
    retry = { max_attempts = 3, initial = "50ms", jitter = "none" } },
  { name = "sh", kind = "exec", command = ["/bin/sh", ")" +
         src + R"(/tests/examples/stages/sh_stage.sh"],
    retry = { max_attempts = 3, initial = "50ms", jitter = "none" } },
]
)";
}

} // namespace

TEST(StageHelpers, RetryResumeProgressAndFailureFromPythonAndSh) {
  test_servers servers;
  write_file(servers.dir() + "/node.toml", config());
  std::vector<std::string> env = {"TROUPE_NATS_URL=" + servers.nats_url(),
                                  "TROUPE_PG_URL=" + servers.pg_url()};
  child_process node{
      {TROUPE_BINARY, "node", "--config", servers.dir() + "/node.toml"},
      servers.dir() + "/node.log",
      env};
  ASSERT_TRUE(node.wait_for_output("ready;", 60s)) << node.output();
  auto publish = [&](const std::string& key, const std::string& payload) {
    child_process p{{"/usr/bin/python3",
                     src + "/examples/publishers/python/publish.py", "helpers",
                     key, payload},
                    servers.dir() + "/" + key + ".log",
                    env};
    int rc = p.wait(60s);
    return std::make_pair(rc, p.output());
  };

  auto [rc, out] = publish("h1", R"({"n": 5})");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find(R"(h1 succeeded {"n":11})"), std::string::npos) << out;
  auto q = [&](const std::string& sql) {
    return count_rows(servers.pg_url(), sql);
  };
  // Each stage: a first attempt that asked for a retry, then a success.
  EXPECT_EQ(q("select count(*) from job_attempts where job_id = 'h1' and"
              " stage = 'py' and not ok and error_message like '%not yet%'"),
            1);
  EXPECT_EQ(q("select count(*) from job_attempts where job_id = 'h1' and"
              " stage = 'sh' and not ok and"
              " error_message like '%busy, try again%'"),
            1);
  EXPECT_EQ(q("select count(*) from job_attempts where job_id = 'h1' and ok"),
            2);
  // The retry of py resumed from the details its first attempt reported.
  EXPECT_EQ(q("select count(*) from stage_checkpoints where job_id = 'h1'"
              " and output @> '{\"n\": 10, \"resumed_from\": {\"at\": 21}}'"),
            1);

  auto [rc2, out2] = publish("h2", R"({"n": 1, "poison": true})");
  EXPECT_EQ(rc2, 1) << out2;
  EXPECT_NE(out2.find("h2 dead_lettered"), std::string::npos) << out2;
  EXPECT_EQ(q("select count(*) from dead_letters where job_id = 'h2' and"
              " stage = 'sh' and last_error like '%poison: this payload%'"),
            1);
  auto [rc3, out3] = publish("h3", R"({"n": "x"})");
  EXPECT_EQ(rc3, 1) << out3;
  EXPECT_EQ(q("select count(*) from job_attempts where job_id = 'h3'"), 1);
  node.signal(SIGTERM);
  EXPECT_EQ(node.wait(30s), 0);
}
