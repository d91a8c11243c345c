// The dashboard in a real browser: starts real servers and a 2-node
// cluster with API tokens, runs one scenario of tests/ui/dashboard.test.mjs
// (headless Debian Chromium via playwright-core), then judges what changed
// by PostgreSQL. Screenshots go to the test's directory, or to docs/dashboard
// with TROUPE_UPDATE_SCREENSHOTS=1.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "tests/runtime/child_process.hpp"
#include "tests/support/db_probe.hpp"
#include "tests/support/test_servers.hpp"

using namespace troupe::test;
using namespace std::chrono_literals;

namespace {

const std::string src = TROUPE_SOURCE_DIR;
const std::string admin_token = "ui-admin-token-0123456789";
const std::string viewer_token = "ui-viewer-token-0123456789";

std::string node_config(const std::string& id, const std::string& dir) {
  return R"([node]
id = ")" +
         id + R"("
http = "127.0.0.1:0"
api_tokens_file = ")" +
         dir + R"(/api-tokens"
[pipelines.quick]
stages = [ { name = "a", kind = "noop" }, { name = "b", kind = "noop" } ]
[pipelines.busy]
stages = [ { name = "a", kind = "noop" }, { name = "b", kind = "noop" }, { name = "c", kind = "noop" } ]
[pipelines.slow]
stages = [ { name = "nap", kind = "sleep", duration = "3s" } ]
[pipelines.reject]
stages = [ { name = "refuse", kind = "fault", permanent = true, fail_first = 1000 } ]
[pipelines.flag]
stages = [
  { name = "prepare", kind = "noop" },
  { name = "check", kind = "exec", command = ["/bin/sh", "-c", "cat > /dev/null; test -f )" +
         dir +
         R"(/flag && echo '{}' || { echo 'the flag file is missing' >&2; exit 1; }"] },
]
)";
}

class Dashboard : public ::testing::Test {
protected:
  static inline std::unique_ptr<test_servers> servers;
  static inline std::unique_ptr<child_process> a, b;

  static void SetUpTestSuite() { servers = std::make_unique<test_servers>(); }

  static void TearDownTestSuite() {
    for (auto* n : {&a, &b})
      if (*n) {
        (*n)->signal(SIGTERM);
        (*n)->wait(30s);
        n->reset();
      }
    servers.reset();
  }

  static std::unique_ptr<child_process> start(const std::string& id) {
    const auto& dir = servers->dir();
    write_file(dir + "/" + id + ".toml", node_config(id, dir));
    auto n = std::make_unique<child_process>(
        std::vector<std::string>{TROUPE_BINARY, "node", "--config",
                                 dir + "/" + id + ".toml"},
        dir + "/" + id + ".log",
        std::vector<std::string>{"TROUPE_NATS_URL=" + servers->nats_url(),
                                 "TROUPE_PG_URL=" + servers->pg_url()});
    EXPECT_TRUE(n->wait_for_output("ready;", 60s)) << n->output();
    return n;
  }

  void SetUp() override {
    ASSERT_FALSE(read_file("/usr/bin/chromium").empty())
        << "Debian's chromium is not installed (scripts/bootstrap.sh)";
    ASSERT_FALSE(
        read_file(src + "/tests/ui/node_modules/playwright-core/package.json")
            .empty())
        << "run `npm ci` in tests/ui (scripts/test.sh does)";
    const auto& dir = servers->dir();
    write_file(dir + "/api-tokens", "admin ops " + admin_token +
                                        "\nviewer ann " + viewer_token + "\n");
    std::remove(
        (dir + "/flag").c_str()); // pipeline flag fails until a test says
    if (a)
      return;
    // One node first: it migrates the schema.
    a = start("ui-a");
    b = start("ui-b");
  }

  /// Runs one scenario of dashboard.test.mjs (or all of `script`); its
  /// exit code and output.
  static std::pair<int, std::string>
  browse(const std::string& scenario,
         const std::string& script = "dashboard.test.mjs") {
    const auto& dir = servers->dir();
    const char* update = std::getenv("TROUPE_UPDATE_SCREENSHOTS");
    auto shots =
        update && std::string{update} == "1" ? src + "/docs/dashboard" : dir;
    child_process run{
        {"node", "--test-reporter=spec", src + "/tests/ui/" + script},
        dir + "/browse-" + scenario + ".log",
        {"SCENARIO=" + scenario,
         "UI_A=http://127.0.0.1:" + std::to_string(http_port_of(*a)),
         "UI_B=http://127.0.0.1:" + std::to_string(http_port_of(*b)),
         "ADMIN_TOKEN=" + admin_token, "VIEWER_TOKEN=" + viewer_token,
         "TROUPE=" TROUPE_BINARY, "TROUPE_NATS_URL=" + servers->nats_url(),
         "FLAG=" + dir + "/flag", "SHOTS=" + shots}};
    int rc = run.wait(300s);
    return {rc, run.output()};
  }

  static std::int64_t sql(const std::string& q) {
    return count_rows(servers->pg_url(), q);
  }
};

} // namespace

TEST_F(Dashboard, OverviewTreeAndPagesOfJobs) {
  auto [rc, out] = browse("reads");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(sql("select count(*) from jobs where pipeline = 'quick' and "
                "state = 'succeeded'"),
            25);
  EXPECT_EQ(sql("select count(*) from jobs where job_id = 'nap' and "
                "state = 'succeeded'"),
            1);
}

TEST_F(Dashboard, ADeadLetterIsReplayedFromThePageAndSucceeds) {
  auto [rc, out] = browse("dead-letter");
  EXPECT_EQ(rc, 0) << out;
  auto at = out.find("dead letter shown");
  if (at != std::string::npos)
    std::cout << out.substr(at, out.find('\n', at) - at) << "\n";
  EXPECT_EQ(sql("select count(*) from jobs where job_id = 'dl-1' and "
                "state = 'succeeded' and life = 2"),
            1);
  EXPECT_EQ(sql("select replay_count from dead_letters where job_id = 'dl-1'"),
            1);
}

TEST_F(Dashboard, AViewerIsRefusedEverySteeringAction) {
  auto [rc, out] = browse("viewer");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(sql("select count(*) from jobs where job_id = 'dl-v' and "
                "state = 'dead_lettered' and life = 1"),
            1)
      << "nothing the viewer pressed changed the job";
  EXPECT_EQ(sql("select count(*) from pipeline_controls where paused"), 0);
  EXPECT_EQ(a->output().find(viewer_token), std::string::npos);
}

TEST_F(Dashboard, FirefoxRunsThePagesAndReplaysADeadLetter) {
  ASSERT_FALSE(read_file("/usr/bin/firefox-esr").empty())
      << "Debian's firefox-esr is not installed (scripts/bootstrap.sh)";
  auto [rc, out] = browse("firefox", "firefox.test.mjs");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(sql("select count(*) from jobs where job_id = 'ff-1' and "
                "state = 'succeeded' and life = 2"),
            1);
  EXPECT_EQ(sql("select count(*) from jobs where job_id = 'ff-nap' and "
                "state = 'cancelled'"),
            1);
}
