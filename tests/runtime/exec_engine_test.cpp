// The `exec` stage kind through the real job engine: real processes, a
// threaded actor system, the in-memory store of the actor tests.
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

TEST_F(exec_engine_test, StdinCarriesTheInputAndStdoutIsTheOutput) {
  auto sup = start({exec_stage("cat")});
  auto r = run_job(sup, "j1", R"({"doc":"a.txt"})");
  ASSERT_EQ(r.state, job_state::succeeded) << r.error;
  auto out = json::parse(db->jobs.at("j1").result);
  EXPECT_EQ(out["job_id"], "j1");
  EXPECT_EQ(out["idempotency_key"], "j1:run");
  EXPECT_EQ(out["payload"]["doc"], "a.txt");
}

TEST_F(exec_engine_test, EmptyStdoutIsAnEmptyObject) {
  auto sup = start({exec_stage("cat >/dev/null")});
  auto r = run_job(sup, "j1");
  ASSERT_EQ(r.state, job_state::succeeded) << r.error;
  EXPECT_EQ(db->jobs.at("j1").result, "{}");
}

TEST_F(exec_engine_test, Exit75IsRetried) {
  // Fails with EX_TEMPFAIL until a marker file exists (created on the
  // first attempt), so the second attempt succeeds.
  auto dir = testing::TempDir() + unique_marker();
  auto sup = start(
      {exec_stage("if [ -e " + dir + " ]; then echo '{\"ok\":1}'; else touch " +
                  dir + "; echo busy >&2; exit 75; fi")});
  auto r = run_job(sup, "j1");
  ASSERT_EQ(r.state, job_state::succeeded) << r.error;
  auto& atts = db->jobs.at("j1").attempts;
  ASSERT_EQ(atts.size(), 2u);
  EXPECT_EQ(atts[0].error_code, "exit_code");
  EXPECT_EQ(atts[0].error_message, "exit 75: busy");
  unlink(dir.c_str());
}

TEST_F(exec_engine_test, Exit1IsPermanentAndDeadLetters) {
  auto sup = start({exec_stage("echo 'bad input' >&2; exit 1", 5)});
  auto r = run_job(sup, "j1");
  ASSERT_EQ(r.state, job_state::dead_lettered);
  auto& atts = db->jobs.at("j1").attempts;
  ASSERT_EQ(atts.size(), 1u);
  EXPECT_EQ(atts[0].error_message, "exit 1: bad input");
}

TEST_F(exec_engine_test, InvalidJsonOnStdoutIsAClearError) {
  auto sup = start({exec_stage("echo 'this is not json'", 3)});
  auto r = run_job(sup, "j1");
  ASSERT_EQ(r.state, job_state::dead_lettered);
  auto& a = db->jobs.at("j1").attempts.at(0);
  EXPECT_EQ(a.error_code, "invalid_output");
  EXPECT_NE(a.error_message.find("this is not json"), std::string::npos);
}

// Hole 2: a program's output nested 200,000 deep overflowed the node's
// stack when the output was written into the next stage's input.
TEST_F(exec_engine_test, DeeplyNestedOutputFailsTheStageNotTheNode) {
  auto sup = start({exec_stage(
      "i=0; while [ $i -lt 8000 ]; do printf '[[[[[[[[[[[[[[[[[[[[[[[[[['; "
      "i=$((i+1)); done; echo",
      3)});
  auto r = run_job(sup, "j1");
  ASSERT_EQ(r.state, job_state::dead_lettered);
  auto& atts = db->jobs.at("j1").attempts;
  ASSERT_EQ(atts.size(), 1u); // permanent: not retried
  EXPECT_EQ(atts[0].error_code, "invalid_output");
  EXPECT_NE(atts[0].error_message.find("nested deeper"), std::string::npos);
}

TEST_F(exec_engine_test, AMissingProgramIsRejectedUpFront) {
  stage_config sc;
  sc.name = "x";
  sc.kind = "exec";
  sc.params = {{"command", {"no-such-program-troupe"}}};
  auto kind = registry.make(sc);
  ASSERT_FALSE(kind);
  EXPECT_NE(describe(kind.error()).find("not found"), std::string::npos);
  sc.params = {{"command", json::array()}};
  EXPECT_FALSE(registry.make(sc));
}

TEST_F(exec_engine_test, AHungProcessIsKilledAtTheTimeoutWithNothingLeft) {
  auto marker = unique_marker();
  auto sup = start({exec_stage("sleep 1000 # " + marker, 2,
                               std::chrono::milliseconds{300})});
  auto r = run_job(sup, "j1");
  ASSERT_EQ(r.state, job_state::dead_lettered);
  auto& atts = db->jobs.at("j1").attempts;
  ASSERT_EQ(atts.size(), 2u);
  EXPECT_EQ(atts[0].error_code, "timeout");
  // The kill is asynchronous: give the pool thread a moment to reap.
  test::eventually([&] { return processes_with(marker) == 0; },
                   std::chrono::milliseconds{5000},
                   std::chrono::milliseconds{50});
  EXPECT_EQ(processes_with(marker), 0) << "a child process survived";
}

TEST_F(exec_engine_test, CancelKillsTheRunningProcess) {
  auto marker = unique_marker();
  auto sup = start({exec_stage("sleep 1000 # " + marker)});
  job_spec spec;
  spec.job_id = "j1";
  spec.pipeline = "p";
  self->send(sup, submit_atom::value, spec, std::uint64_t{1});
  test::eventually([&] { return processes_with(marker) > 0; },
                   std::chrono::milliseconds{4000},
                   std::chrono::milliseconds{20});
  // The shell may briefly show twice (forking its child), hence >= 1.
  ASSERT_GE(processes_with(marker), 1);
  self->send(sup, cancel_atom::value, std::string{"j1"});
  job_result r;
  self->receive([&](ok_atom) {},
                caf::after(10s) >> [] { ADD_FAILURE() << "no ack"; });
  self->receive([&](finished_atom, std::uint64_t,
                    job_result& res) { r = std::move(res); },
                caf::after(30s) >>
                    [] { ADD_FAILURE() << "job did not finish"; });
  EXPECT_EQ(r.state, job_state::cancelled);
  test::eventually([&] { return processes_with(marker) == 0; },
                   std::chrono::milliseconds{5000},
                   std::chrono::milliseconds{50});
  EXPECT_EQ(processes_with(marker), 0) << "the child survived the cancel";
}

TEST_F(exec_engine_test, LargeOutputIsReadWithoutDeadlock) {
  // ~5 MB of JSON while the input is also being written.
  auto sup = start({exec_stage(
      "cat >/dev/null; printf '{\"data\":\"'; head -c 5000000 /dev/zero | tr "
      "'\\0' 'x'; printf '\"}'")});
  auto r = run_job(sup, "j1");
  ASSERT_EQ(r.state, job_state::succeeded) << r.error;
  EXPECT_GT(db->jobs.at("j1").result.size(), 5000000u);
}

TEST_F(exec_engine_test, EnvAndCwdReachTheProgramWithDefaultSignals) {
  auto sc = exec_stage(R"sh(
path_set=false; [ -n "$PATH" ] && path_set=true
own=false; [ "$(ps -o pgid= $$ | tr -d ' ')" = "$$" ] && own=true
printf '{"foo":"%s","path_set":%s,"cwd":"%s","pgid_is_pid":%s}' "$FOO" "$path_set" "$(pwd)" "$own"
)sh");
  sc.params["env"] = {{"FOO", "bar baz"}};
  sc.params["cwd"] = "/tmp";
  auto sup = start({sc});
  auto r = run_job(sup, "j1", "{}");
  ASSERT_EQ(r.state, job_state::succeeded) << r.error;
  auto out = json::parse(db->jobs.at("j1").result);
  EXPECT_EQ(out["foo"], "bar baz");
  EXPECT_EQ(out["path_set"], true); // PATH is on the default allow-list
  EXPECT_EQ(out["cwd"], "/tmp");
  EXPECT_EQ(out["pgid_is_pid"], true); // its own process group
}

TEST_F(exec_engine_test, AMissingWorkingDirectoryIsAClearPermanentError) {
  auto sc = exec_stage("echo '{}'", 3);
  sc.params["cwd"] = "/nonexistent/dir";
  auto sup = start({sc});
  auto r = run_job(sup, "j1", "{}");
  EXPECT_EQ(r.state, job_state::dead_lettered);
  EXPECT_NE(r.error.find("in '/nonexistent/dir'"), std::string::npos)
      << r.error;
}

TEST_F(exec_engine_test, ABackgroundChildDoesNotHoldTheAttempt) {
  // The attempt ends when the main process exits, not when every holder of
  // its stdout closes it; the background child is killed with its group.
  auto nap = unique_sleep(30);
  auto sup = start({exec_stage("sleep " + nap + " & echo '{\"a\":1}'")});
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_job(sup, "j1", "{}");
  EXPECT_LT(seconds_since(t0), 10.0) << "the background child held it";
  ASSERT_EQ(r.state, job_state::succeeded) << r.error;
  EXPECT_EQ(json::parse(db->jobs.at("j1").result), json::parse(R"({"a":1})"));
  test::eventually([&] { return processes_with(nap) == 0; },
                   std::chrono::milliseconds{5000},
                   std::chrono::milliseconds{50});
  EXPECT_EQ(processes_with(nap), 0) << "the background child survived";
  kill_processes_with(nap);
}

TEST_F(exec_engine_test, ASetsidChildDoesNotHoldTheAttempt) {
  auto nap = unique_sleep(30);
  auto sup = start({exec_stage("setsid sleep " + nap + " & echo {}")});
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_job(sup, "j1", "{}");
  EXPECT_LT(seconds_since(t0), 10.0) << "the setsid'ed child held it";
  ASSERT_EQ(r.state, job_state::succeeded) << r.error;
  EXPECT_EQ(db->jobs.at("j1").result, "{}");
  kill_processes_with(nap);
}

TEST_F(exec_engine_test,
       AStageHungWithASetsidChildEndsAtItsTimeoutAndFreesItsThread) {
  use_pool(1);
  auto escapee = unique_sleep(30);
  auto hang = unique_sleep(30);
  auto hung = start(
      {exec_stage("setsid sleep " + escapee + " & sleep " + hang, 1, 300ms)});
  auto quick = start({exec_stage("echo '{\"ok\":true}'")});
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_job(hung, "hung");
  EXPECT_EQ(r.state, job_state::dead_lettered);
  EXPECT_EQ(db->jobs.at("hung").attempts.at(0).error_code, "timeout");
  // The one exec thread is free again: more attempts run, promptly.
  auto more = run_jobs(quick, 3, "after");
  EXPECT_LT(seconds_since(t0), 10.0) << "the exec thread stayed blocked";
  for (auto& [id, res] : more)
    EXPECT_EQ(res.state, job_state::succeeded) << id << ": " << res.error;
  EXPECT_EQ(more.size(), 3u);
  kill_processes_with(escapee);
  kill_processes_with(hang);
}

TEST_F(exec_engine_test, ACancelledStageWithASetsidChildFreesItsThread) {
  use_pool(1);
  auto escapee = unique_sleep(30);
  auto hang = unique_sleep(30);
  auto hung =
      start({exec_stage("setsid sleep " + escapee + " & sleep " + hang)});
  auto quick = start({exec_stage("echo '{\"ok\":true}'")});
  job_spec spec;
  spec.job_id = "hung";
  spec.pipeline = "p";
  self->send(hung, submit_atom::value, spec, std::uint64_t{1});
  test::eventually([&] { return processes_with(hang) > 0; },
                   std::chrono::milliseconds{4000},
                   std::chrono::milliseconds{20});
  ASSERT_GE(processes_with(hang), 1);
  auto t0 = std::chrono::steady_clock::now();
  self->send(hung, cancel_atom::value, std::string{"hung"});
  self->receive([&](ok_atom) {},
                caf::after(10s) >> [] { ADD_FAILURE() << "no ack"; });
  job_result r;
  self->receive([&](finished_atom, std::uint64_t,
                    job_result& res) { r = std::move(res); },
                caf::after(30s) >>
                    [] { ADD_FAILURE() << "job did not finish"; });
  EXPECT_EQ(r.state, job_state::cancelled);
  auto more = run_jobs(quick, 3, "after");
  EXPECT_LT(seconds_since(t0), 10.0) << "the exec thread stayed blocked";
  for (auto& [id, res] : more)
    EXPECT_EQ(res.state, job_state::succeeded) << id << ": " << res.error;
  EXPECT_EQ(more.size(), 3u);
  kill_processes_with(escapee);
  kill_processes_with(hang);
}
