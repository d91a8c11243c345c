#include "engine_fixture.hpp"
#include "tests/actors/deterministic.hpp"

#include "actors/atoms.hpp"
#include "messages/errc.hpp"

namespace troupe::test {

namespace {

caf::actor_system_config& init(caf::actor_system_config& cfg) {
  return test::deterministic_config(cfg);
}

class probe_stage final : public stage_kind {
public:
  probe_stage(std::shared_ptr<probe_log> log, std::function<std::int64_t()> now,
              nlohmann::json params)
      : log_(std::move(log)), now_(std::move(now)), params_(std::move(params)) {
  }

  void start(caf::event_based_actor* self,
             const stage_request& req) const override {
    log_->calls.push_back({req.job_id, req.stage, req.attempt, now_(),
                           req.input, req.traceparent});
    auto log = log_;
    self->attach_functor([log] { ++log->cleanups; });
    if (params_.value("watch_cancel", false))
      log->flags.push_back(cancellation_flag(self));
    if (queues_attempts())
      self->delayed_send(self, std::chrono::milliseconds{queue_ms()},
                         started_atom::value);
    if (auto r = params_.find("reports"); r != params_.end())
      for (auto& x : *r)
        self->delayed_send(self, std::chrono::milliseconds{x[0].get<int>()},
                           progress_atom::value, x[1].get<std::string>());
    if (params_.value("hang", false))
      return;
    stage_outcome out;
    auto calls = log_->count(req.job_id, req.stage);
    if (req.attempt <= params_.value("fail_first", 0) ||
        calls <= params_.value("fail_calls", 0))
      out = stage_failure(params_.value("code", std::string{"probe"}),
                          "probe failure " + std::to_string(req.attempt),
                          params_.value("retryable", true));
    else
      out = stage_success(params_.value("output", std::string{R"({"from":")"} +
                                                      req.stage + R"("})"));
    auto d = params_.value("duration_ms", 0);
    if (d > 0)
      self->delayed_send(self, std::chrono::milliseconds{d}, std::move(out));
    else
      self->send(self, std::move(out));
  }

  bool queues_attempts() const override { return queue_ms() > 0; }

private:
  int queue_ms() const { return params_.value("queue_ms", 0); }

  std::shared_ptr<probe_log> log_;
  std::function<std::int64_t()> now_;
  nlohmann::json params_;
};

} // namespace

stage_kind_factory make_probe_factory(std::shared_ptr<probe_log> log,
                                      std::function<std::int64_t()> now) {
  return [log, now](const stage_config& sc)
             -> caf::expected<std::shared_ptr<const stage_kind>> {
    return std::shared_ptr<const stage_kind>{
        std::make_shared<probe_stage>(log, now, sc.params)};
  };
}

engine_test::engine_test()
    : sys(init(cfg)),
      sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())) {
  // Start the virtual clock away from zero so "0" never looks like a time.
  sched.clock().current_time += std::chrono::hours(1);
  registry = builtin_stage_registry();
  registry.add("probe",
               make_probe_factory(probes, [this] { return now_ms(); }));
  store = spawn_memory_store(sys, db);
  event_sink = spawn_event_collector(sys, events);
  intake = spawn_intake_collector(sys, finished);
  refused_before_ = refused_phase_transitions();
  sched.run();
}

void engine_test::TearDown() {
  EXPECT_EQ(refused_phase_transitions(), refused_before_)
      << "a job actor made a phase change that may_enter refuses";
}

engine_test::~engine_test() {
  for (auto& s : supervisors)
    caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(event_sink, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(intake, caf::exit_reason::user_shutdown);
  sched.run();
  // Job actors still parked on timers are killed via their own timers
  // being dropped; give remaining actors their exits.
  while (sched.has_pending_timeout()) {
    sched.trigger_timeouts();
    sched.run();
  }
}

void engine_test::run_to_quiescence() {
  sched.run();
  while (sched.has_pending_timeout()) {
    sched.trigger_timeout();
    sched.run();
  }
}

std::int64_t engine_test::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             sched.clock().now().time_since_epoch())
      .count();
}

stage_config engine_test::probe(const std::string& name, nlohmann::json params,
                                int max_attempts) {
  stage_config sc;
  sc.name = name;
  sc.kind = "probe";
  sc.params = std::move(params);
  sc.retry.max_attempts = max_attempts;
  sc.retry.initial = std::chrono::milliseconds{100};
  sc.retry.multiplier = 2.0;
  sc.retry.max = std::chrono::milliseconds{10000};
  sc.retry.jitter = jitter_kind::none;
  return sc;
}

caf::actor engine_test::start_pipeline(pipeline_config pc) {
  if (pc.name.empty())
    pc.name = "p";
  auto def = make_pipeline_def(pc, registry);
  EXPECT_TRUE(def) << describe(def.error());
  auto deps = std::make_shared<job_deps>();
  deps->store = store;
  deps->events = event_sink;
  deps->node_id = "n1";
  deps->now_ms = [this] { return now_ms(); };
  deps->seed = 42;
  deps->speculate = speculate;
  deps->store_after = store_after;
  supervisor_deps sd;
  sd.job = deps;
  sd.intake = intake;
  auto sup =
      caf::actor_cast<caf::actor>(spawn_pipeline_supervisor(sys, *def, sd));
  supervisors.push_back(sup);
  sched.run();
  return sup;
}

void engine_test::submit(const caf::actor& sup, const std::string& job_id,
                         std::uint64_t delivery, const std::string& payload) {
  job_spec spec;
  spec.job_id = job_id;
  spec.pipeline = "p";
  spec.payload = payload;
  spec.fresh = fresh;
  caf::anon_send(sup, submit_atom::value, spec, delivery);
}

pipeline_stats engine_test::stats(const caf::actor& sup) {
  pipeline_stats out;
  caf::scoped_actor self{sys};
  self->send(sup, stats_atom::value);
  sched.run();
  self->receive([&](pipeline_stats& s) { out = s; });
  return out;
}

caf::actor engine_test::job_actor_of(const caf::actor& sup,
                                     const std::string& job_id) {
  caf::actor out;
  caf::scoped_actor self{sys};
  self->send(sup, get_atom::value, job_id);
  sched.run();
  self->receive([&](caf::actor& a) { out = a; },
                [&](caf::error&) { out = nullptr; });
  return out;
}

std::vector<std::string>
engine_test::event_types(const std::string& job_id) const {
  std::vector<std::string> out;
  for (auto& ev : *events)
    if (ev.job_id == job_id)
      out.push_back(ev.type);
  return out;
}

} // namespace troupe::test
