// The `exec` stage kind through the real job engine: real processes, a
// threaded actor system, the in-memory store of the actor tests.
#include <csignal>
#include <cstdlib>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

#include <caf/all.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "actors/atoms.hpp"
#include "actors/builtin_stages.hpp"
#include "actors/pipeline_supervisor.hpp"
#include "messages/errc.hpp"
#include "runtime/common/blocking_pool.hpp"
#include "runtime/exec/exec_stage.hpp"
#include "tests/actors/memory_store.hpp"

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

/// Pids of processes whose command line contains `marker`.
std::vector<pid_t> pids_with(const std::string& marker) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  while (auto* e = readdir(d)) {
    int pid = std::atoi(e->d_name);
    if (pid <= 0 || pid == getpid())
      continue;
    std::ifstream in{"/proc/" + std::to_string(pid) + "/cmdline"};
    std::string cmd{std::istreambuf_iterator<char>{in}, {}};
    for (auto& c : cmd)
      if (c == '\0')
        c = ' ';
    if (cmd.find(marker) != std::string::npos)
      out.push_back(pid);
  }
  closedir(d);
  return out;
}

/// Processes whose command line contains `marker` (zombies excluded).
int processes_with(const std::string& marker) {
  return static_cast<int>(pids_with(marker).size());
}

std::string unique_marker() {
  std::mt19937_64 rng{std::random_device{}()};
  return "troupe-marker-" + std::to_string(rng());
}

/// Kills this test's own leftovers (processes whose command line contains
/// a unique `marker`), e.g. a setsid'ed child that left the attempt.
void kill_processes_with(const std::string& marker) {
  for (auto pid : pids_with(marker))
    kill(pid, SIGKILL);
}

/// A duration for `sleep` that no other process uses ("30.<digits>"), so
/// that the sleeping process can be found by its command line.
std::string unique_sleep(int seconds) {
  std::mt19937_64 rng{std::random_device{}()};
  return std::to_string(seconds) + "." + std::to_string(rng() % 1000000000);
}

/// Seconds since `t0`.
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
      .count();
}

/// Sets environment variables for one test and restores them after.
class scoped_env {
public:
  explicit scoped_env(std::map<std::string, std::string> vars) {
    for (auto& [k, v] : vars) {
      const char* old = std::getenv(k.c_str());
      saved_.emplace_back(k,
                          old ? std::optional<std::string>{old} : std::nullopt);
      setenv(k.c_str(), v.c_str(), 1);
    }
  }
  ~scoped_env() {
    for (auto& [k, v] : saved_)
      if (v)
        setenv(k.c_str(), v->c_str(), 1);
      else
        unsetenv(k.c_str());
  }

private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

class exec_engine_test : public ::testing::Test {
public:
  exec_engine_test() : sys(init(cfg)), self(sys) {
    store = spawn_memory_store(sys, db);
    pool = std::make_shared<blocking_pool>(4);
    registry = builtin_stage_registry();
    registry.add("exec", make_exec_stage_factory(pool, options()));
  }

  exec_options options() {
    exec_options o;
    o.stats = stats;
    return o;
  }

  ~exec_engine_test() override {
    for (auto& s : sups)
      caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
    pool->stop();
  }

  static caf::actor_system_config& init(caf::actor_system_config& c) {
    c.set("logger.file-verbosity", caf::atom("quiet"));
    c.set("scheduler.max-threads", std::size_t{2});
    return c;
  }

  stage_config exec_stage(const std::string& script, int max_attempts = 3,
                          duration_ms timeout = duration_ms{0}) {
    stage_config sc;
    sc.name = "run";
    sc.kind = "exec";
    sc.params = {{"command", {"/bin/sh", "-c", script}}};
    sc.timeout = timeout;
    sc.retry.max_attempts = max_attempts;
    sc.retry.initial = 10ms;
    sc.retry.jitter = jitter_kind::none;
    return sc;
  }

  caf::actor start(std::vector<stage_config> stages) {
    pipeline_config pc;
    pc.name = "p";
    pc.stages = std::move(stages);
    auto def = make_pipeline_def(pc, registry);
    EXPECT_TRUE(def) << describe(def.error());
    auto deps = std::make_shared<job_deps>();
    deps->store = store;
    deps->node_id = "n1";
    deps->now_ms = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
    supervisor_deps sd;
    sd.job = deps;
    sd.intake = self;
    auto sup = spawn_pipeline_supervisor(sys, *def, sd);
    sups.push_back(sup);
    return sup;
  }

  /// Replaces the exec thread pool (and the exec kind using it).
  void use_pool(std::size_t threads) {
    pool->stop();
    pool = std::make_shared<blocking_pool>(threads);
    registry.add("exec", make_exec_stage_factory(pool, options()));
  }

  /// Submits jobs `<prefix>0` .. `<prefix>n-1` at once and waits for all.
  std::map<std::string, job_result> run_jobs(const caf::actor& sup, int n,
                                             const std::string& prefix = "j") {
    for (int i = 0; i < n; ++i) {
      job_spec spec;
      spec.job_id = prefix + std::to_string(i);
      spec.pipeline = "p";
      spec.payload = "{}";
      self->send(sup, submit_atom::value, spec, std::uint64_t(i + 1));
    }
    std::map<std::string, job_result> out;
    for (int i = 0; i < n; ++i)
      self->receive(
          [&](finished_atom, std::uint64_t, job_result& r) {
            auto id = r.job_id;
            out[id] = std::move(r);
          },
          caf::after(60s) >> [] { ADD_FAILURE() << "a job did not finish"; });
    return out;
  }

  job_result run_job(const caf::actor& sup, const std::string& id,
                     const std::string& payload = R"({"n":1})") {
    job_spec spec;
    spec.job_id = id;
    spec.pipeline = "p";
    spec.payload = payload;
    self->send(sup, submit_atom::value, spec, std::uint64_t{1});
    job_result out;
    out.error = "timed out";
    self->receive([&](finished_atom, std::uint64_t,
                      job_result& r) { out = std::move(r); },
                  caf::after(60s) >> [] {});
    return out;
  }

  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scoped_actor self;
  std::shared_ptr<memory_db> db = std::make_shared<memory_db>();
  store_actor store;
  std::shared_ptr<blocking_pool> pool;
  std::shared_ptr<exec_stats> stats = std::make_shared<exec_stats>();
  stage_registry registry;
  std::vector<caf::actor> sups;
};

} // namespace

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
  for (int i = 0; i < 100 && processes_with(marker) > 0; ++i)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(processes_with(marker), 0) << "a child process survived";
}

TEST_F(exec_engine_test, CancelKillsTheRunningProcess) {
  auto marker = unique_marker();
  auto sup = start({exec_stage("sleep 1000 # " + marker)});
  job_spec spec;
  spec.job_id = "j1";
  spec.pipeline = "p";
  self->send(sup, submit_atom::value, spec, std::uint64_t{1});
  for (int i = 0; i < 200 && processes_with(marker) == 0; ++i)
    std::this_thread::sleep_for(20ms);
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
  for (int i = 0; i < 100 && processes_with(marker) > 0; ++i)
    std::this_thread::sleep_for(50ms);
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
  for (int i = 0; i < 100 && processes_with(nap) > 0; ++i)
    std::this_thread::sleep_for(50ms);
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
  for (int i = 0; i < 200 && processes_with(hang) == 0; ++i)
    std::this_thread::sleep_for(20ms);
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
  for (int i = 0; i < 200 && access(stat_path.c_str(), F_OK) == 0; ++i)
    std::this_thread::sleep_for(50ms);
  EXPECT_NE(access(stat_path.c_str(), F_OK), 0) << "never reaped";
}
