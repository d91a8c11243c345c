#pragma once

// The exec stage's test fixture: a deterministic-enough actor system with
// the in-memory store, a blocking pool for exec attempts, and helpers that
// find the processes a test started.

#include "actors/atoms.hpp"
#include "actors/builtin_stages.hpp"
#include "actors/pipeline_supervisor.hpp"
#include "messages/errc.hpp"
#include "runtime/common/blocking_pool.hpp"
#include "runtime/exec/exec_stage.hpp"
#include "tests/actors/memory_store.hpp"
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

#include "tests/support/proc.hpp"

namespace troupe::test {

using namespace std::chrono_literals;

/// Processes whose command line contains `marker` (zombies excluded).
inline int processes_with(const std::string& marker) {
  return static_cast<int>(processes_mentioning(marker).size());
}

inline std::string unique_marker() {
  std::mt19937_64 rng{std::random_device{}()};
  return "troupe-marker-" + std::to_string(rng());
}

/// Kills this test's own leftovers (processes whose command line contains
/// a unique `marker`), e.g. a setsid'ed child that left the attempt.
inline void kill_processes_with(const std::string& marker) {
  for (auto pid : processes_mentioning(marker))
    kill(pid, SIGKILL);
}

/// A duration for `sleep` that no other process uses ("30.<digits>"), so
/// that the sleeping process can be found by its command line.
inline std::string unique_sleep(int seconds) {
  std::mt19937_64 rng{std::random_device{}()};
  return std::to_string(seconds) + "." + std::to_string(rng() % 1000000000);
}

/// Seconds since `t0`.
inline double seconds_since(std::chrono::steady_clock::time_point t0) {
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
    auto sup =
        caf::actor_cast<caf::actor>(spawn_pipeline_supervisor(sys, *def, sd));
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

} // namespace troupe::test
