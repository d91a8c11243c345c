#pragma once

// A GoogleTest fixture running the job engine under CAF's deterministic test
// coordinator: one thread, a virtual clock, timers fired on demand.

#include <memory>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <gtest/gtest.h>

#include "actors/atoms.hpp"
#include "actors/builtin_stages.hpp"
#include "actors/job_phase.hpp"
#include "actors/pipeline_supervisor.hpp"
#include "memory_store.hpp"
#include "messages/stats.hpp"

namespace troupe::test {

/// One recorded start of a `probe` stage attempt.
struct probe_call {
  std::string job_id;
  std::string stage;
  std::int32_t attempt;
  std::int64_t at_ms;
  std::string input;
  std::string traceparent = {};
};

/// Shared log of the probe stage kind.
struct probe_log {
  std::vector<probe_call> calls;
  /// Attempts whose stage actor went away (cleanup ran), by job id.
  int cleanups = 0;
  /// Cancellation flags of attempts whose probe has `watch_cancel`.
  std::vector<std::shared_ptr<const std::atomic<bool>>> flags;
  int count(const std::string& job_id, const std::string& stage) const {
    int n = 0;
    for (auto& c : calls)
      n += c.job_id == job_id && c.stage == stage;
    return n;
  }
};

/// A C++ stage kind registered by the tests (showing the registration API):
/// params `fail_first` (int: fails attempts 1..N of each life), `fail_calls`
/// (int: fails the first N calls for a job and stage, across lives), `code`
/// (string), `retryable` (bool), `duration_ms` (int: outcome after this long),
/// `hang` (bool: never answers), `queue_ms` (int: the attempt waits this long
/// for a slot before its work begins, like an exec stage waiting for a
/// thread; `duration_ms` counts from start() all the same), `output`
/// (string: the output on success), `reports` ([[ms, "report"], ...]:
/// progress reports sent that long after start()), `watch_cancel` (bool:
/// keeps the attempt's cancellation_flag in the log).
stage_kind_factory make_probe_factory(std::shared_ptr<probe_log> log,
                                      std::function<std::int64_t()> now);

/// A delivery of job `id` to pipeline "p" with payload {"n":1}.
inline job_spec spec_of(const std::string& id) {
  job_spec spec;
  spec.job_id = id;
  spec.pipeline = "p";
  spec.payload = R"({"n":1})";
  return spec;
}

/// The result reported for `delivery`, or null.
inline const job_result* result_of(const std::vector<finished_delivery>& all,
                                   std::uint64_t delivery) {
  for (auto& f : all)
    if (f.delivery == delivery)
      return &f.result;
  return nullptr;
}

/// The events of one type, in order.
inline std::vector<job_event> of_type(const std::vector<job_event>& all,
                                      const std::string& type) {
  std::vector<job_event> out;
  for (auto& e : all)
    if (e.type == type)
      out.push_back(e);
  return out;
}

/// A pipeline "p" of the one stage `sc`.
inline pipeline_config one_stage(stage_config sc, int max_in_flight = 10) {
  pipeline_config pc;
  pc.name = "p";
  pc.max_in_flight = max_in_flight;
  pc.stages.push_back(std::move(sc));
  return pc;
}

class engine_test : public ::testing::Test {
public:
  engine_test();
  ~engine_test() override;

  /// Fails the test if a job actor made a phase change that
  /// may_enter refuses (actors/job_phase.hpp).
  void TearDown() override;

  /// Runs messages and fires timers until nothing is left to do.
  void run_to_quiescence();

  /// Runs all pending messages without firing timers.
  void run_messages() { sched.run(); }

  /// Virtual now in ms.
  std::int64_t now_ms() const;

  /// A stage config of kind `probe` with the given params.
  static stage_config probe(const std::string& name,
                            nlohmann::json params = nlohmann::json::object(),
                            int max_attempts = 3);

  /// Builds the pipeline and spawns its supervisor.
  caf::actor start_pipeline(pipeline_config cfg);

  /// Submits a job with payload `payload` to `sup` as delivery `delivery`
  /// (a first delivery of a new job if `fresh` is set).
  void submit(const caf::actor& sup, const std::string& job_id,
              std::uint64_t delivery = 0,
              const std::string& payload = R"({"n":1})");

  /// Synchronously asks the supervisor for its stats.
  pipeline_stats stats(const caf::actor& sup);

  /// Finds the job actor of a running job (null if none).
  caf::actor job_actor_of(const caf::actor& sup, const std::string& job_id);

  /// Event types of one job, in order.
  std::vector<std::string> event_types(const std::string& job_id) const;

  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;
  std::shared_ptr<memory_db> db = std::make_shared<memory_db>();
  std::shared_ptr<std::vector<job_event>> events =
      std::make_shared<std::vector<job_event>>();
  std::shared_ptr<std::vector<finished_delivery>> finished =
      std::make_shared<std::vector<finished_delivery>>();
  std::shared_ptr<probe_log> probes = std::make_shared<probe_log>();
  stage_registry registry;
  store_actor store;
  caf::actor event_sink;
  caf::actor intake;
  std::vector<caf::actor> supervisors;
  /// Given to job actors by start_pipeline (job_deps::speculate).
  duration_ms speculate{0};
  /// Submitted jobs are first deliveries of new jobs (job_spec::fresh).
  bool fresh = false;
  /// Given to job actors by start_pipeline (job_deps::store_after).
  duration_ms store_after{0};

private:
  std::uint64_t refused_before_ = 0;
};

} // namespace troupe::test
