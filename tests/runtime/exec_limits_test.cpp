// The exec stage's limits: the environment a program sees (an allow-list,
// never TROUPE_*), a timeout that starts with the program, max_concurrency,
// and orphans reaped by the node.
#include "actors/atoms.hpp"
#include "actors/builtin_stages.hpp"
#include "actors/pipeline_supervisor.hpp"
#include "messages/errc.hpp"
#include "runtime/common/blocking_pool.hpp"
#include "runtime/exec/exec_stage.hpp"
#include "tests/actors/memory_store.hpp"
#include "tests/runtime/exec_fixture.hpp"
#include "tests/support/eventually.hpp"
#include <caf/all.hpp>
#include <csignal>
#include <cstdlib>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;
using nlohmann::json;

TEST_F(exec_engine_test, TheProgramSeesOnlyAllowListedVariablesAndItsEnv) {
  scoped_env env{{{"TROUPE_PG_URL", "postgresql://troupe:secret@db/troupe"},
                  {"TROUPE_NATS_PASSWORD", "secret"},
                  {"TROUPE_NATS_TOKEN", "secret"},
                  {"AWS_REGION", "eu-west-1"},
                  {"MY_SETTING", "mine"},
                  {"NOT_LISTED", "nope"}}};
  // A descriptor of the node without close-on-exec (as libraries open
  // sockets and log files) must not reach the program either.
  auto node_file = testing::TempDir() + unique_marker();
  int node_fd = open(node_file.c_str(), O_WRONLY | O_CREAT, 0600);
  ASSERT_GE(node_fd, 3);
  auto sc = exec_stage(std::string{R"sh(
printf '{"pg":"%s","password":"%s","token":"%s","troupe_vars":%s,'\
'"region":"%s","mine":"%s","not_listed":"%s","foo":"%s","path_set":%s,'\
'"node_fd":%s}' \
  "${TROUPE_PG_URL-unset}" "${TROUPE_NATS_PASSWORD-unset}" \
  "${TROUPE_NATS_TOKEN-unset}" "$(env | grep -c '^TROUPE_')" \
  "${AWS_REGION-unset}" "${MY_SETTING-unset}" "${NOT_LISTED-unset}" \
  "${FOO-unset}" "$([ -n "$PATH" ] && echo true || echo false)" \
  "$(ls -l /proc/$$/fd/ | grep -c )sh"} +
                       node_file + R"sh()"
)sh");
  sc.params["inherit_env"] = {"AWS_REGION", "MY_*"};
  sc.params["env"] = {{"FOO", "bar"}};
  auto sup = start({sc});
  auto r = run_job(sup, "j1", "{}");
  ASSERT_EQ(r.state, job_state::succeeded) << r.error;
  auto out = json::parse(db->jobs.at("j1").result);
  EXPECT_EQ(out["pg"], "unset");
  EXPECT_EQ(out["password"], "unset");
  EXPECT_EQ(out["token"], "unset");
  EXPECT_EQ(out["troupe_vars"], 0);
  EXPECT_EQ(out["region"], "eu-west-1");
  EXPECT_EQ(out["mine"], "mine");
  EXPECT_EQ(out["not_listed"], "unset");
  EXPECT_EQ(out["foo"], "bar");
  EXPECT_EQ(out["path_set"], true);
  EXPECT_EQ(out["node_fd"], 0);
  close(node_fd);
  unlink(node_file.c_str());
}

TEST_F(exec_engine_test, TroupeVariablesCannotBeAllowListed) {
  auto sc = exec_stage("true");
  for (auto bad : {"TROUPE_PG_URL", "TROUPE_*", "TR*", "*"}) {
    sc.params["inherit_env"] = {"HOME", bad};
    auto kind = registry.make(sc);
    ASSERT_FALSE(kind) << bad;
    EXPECT_NE(describe(kind.error()).find("TROUPE_"), std::string::npos)
        << describe(kind.error());
  }
  sc.params["inherit_env"] = {"AWS_*", "TZ"};
  EXPECT_TRUE(registry.make(sc));
}

TEST_F(exec_engine_test, WaitingForAnExecThreadDoesNotCountAgainstTheTimeout) {
  // One thread, five jobs of 300 ms each with a 1 s timeout: the last ones
  // wait over a second for the thread, but none runs longer than 300 ms.
  use_pool(1);
  auto sup = start({exec_stage("sleep 0.3; echo {}", 1, 1000ms)});
  auto results = run_jobs(sup, 5);
  ASSERT_EQ(results.size(), 5u);
  for (auto& [id, res] : results)
    EXPECT_EQ(res.state, job_state::succeeded) << id << ": " << res.error;
  // Every attempt's wait was measured; nothing waits or runs any more.
  EXPECT_EQ(stats->queue_wait.count(), 5u);
  EXPECT_EQ(stats->waiting.load(), 0);
  EXPECT_EQ(stats->running.load(), 0);
}

TEST_F(exec_engine_test, MaxConcurrencyRunsOneAttemptOfTheStageAtATime) {
  // A lock directory shows overlap: mkdir fails while another attempt
  // holds it. Waiting attempts do not run their 1 s timeout either.
  auto dir = testing::TempDir() + unique_marker();
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  auto sc = exec_stage("mkdir " + dir +
                           "/lock || { echo overlap >&2; exit 1; }; "
                           "sleep 0.3; rmdir " +
                           dir + "/lock; echo {}",
                       1, 1000ms);
  sc.params["max_concurrency"] = 1;
  auto sup = start({sc});
  auto results = run_jobs(sup, 5);
  ASSERT_EQ(results.size(), 5u);
  for (auto& [id, res] : results)
    EXPECT_EQ(res.state, job_state::succeeded) << id << ": " << res.error;
  rmdir((dir + "/lock").c_str());
  rmdir(dir.c_str());
}

TEST_F(exec_engine_test, BadMaxConcurrencyIsRejectedUpFront) {
  auto sc = exec_stage("true");
  for (auto bad : {json(0), json(-1), json("2"), json(1.5)}) {
    sc.params["max_concurrency"] = bad;
    auto kind = registry.make(sc);
    ASSERT_FALSE(kind) << bad;
    EXPECT_NE(describe(kind.error()).find("max_concurrency"),
              std::string::npos);
  }
}

TEST_F(exec_engine_test, AnOrphanOfAStageIsAdoptedAndReapedByTheNode) {
  // The setsid'ed child outlives the attempt: the node (a subreaper)
  // becomes its parent, and reaps it once it exits; no zombie is left.
  auto nap = unique_sleep(1);
  auto sup = start({exec_stage("setsid sleep " + nap + " & echo {}")});
  auto r = run_job(sup, "j1", "{}");
  ASSERT_EQ(r.state, job_state::succeeded) << r.error;
  pid_t orphan = 0;
  DIR* d = opendir("/proc");
  while (auto* e = readdir(d)) {
    std::ifstream in{std::string{"/proc/"} + e->d_name + "/cmdline"};
    std::string cmd{std::istreambuf_iterator<char>{in}, {}};
    if (cmd.find(nap) != std::string::npos)
      orphan = std::atoi(e->d_name);
  }
  closedir(d);
  ASSERT_GT(orphan, 0) << "the orphan is gone already";
  auto stat_path = "/proc/" + std::to_string(orphan) + "/stat";
  std::string stat;
  std::getline(std::ifstream{stat_path}, stat);
  auto fields = stat.substr(stat.rfind(')') + 2);
  EXPECT_EQ(std::atoi(fields.substr(2).c_str()), getpid())
      << "not adopted: " << stat;
  test::eventually([&] { return access(stat_path.c_str(), F_OK) != 0; },
                   std::chrono::milliseconds{10000},
                   std::chrono::milliseconds{50});
  EXPECT_NE(access(stat_path.c_str(), F_OK), 0) << "never reaped";
}
