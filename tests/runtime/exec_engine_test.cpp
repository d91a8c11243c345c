// The `exec` stage kind through the real job engine: real processes, a
// threaded actor system, the in-memory store of the actor tests.
#include <csignal>
#include <dirent.h>
#include <fstream>
#include <random>
#include <unistd.h>

#include <caf/all.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "actors/atoms.hpp"
#include "actors/builtin_stages.hpp"
#include "actors/pipeline_supervisor.hpp"
#include "messages/errc.hpp"
#include "runtime/blocking_pool.hpp"
#include "runtime/exec_stage.hpp"
#include "tests/actors/memory_store.hpp"

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

/// Processes whose command line contains `marker` (zombies excluded).
int processes_with(const std::string& marker) {
  int n = 0;
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
    n += cmd.find(marker) != std::string::npos;
  }
  closedir(d);
  return n;
}

std::string unique_marker() {
  std::mt19937_64 rng{std::random_device{}()};
  return "troupe-marker-" + std::to_string(rng());
}

class exec_engine_test : public ::testing::Test {
public:
  exec_engine_test() : sys(init(cfg)), self(sys) {
    store = spawn_memory_store(sys, db);
    pool = std::make_shared<blocking_pool>(4);
    registry = builtin_stage_registry();
    registry.add("exec", make_exec_stage_factory(pool));
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
  caf::actor store;
  std::shared_ptr<blocking_pool> pool;
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
  EXPECT_EQ(out["path_set"], true); // the node's environment is inherited
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
