// Running and stopping a node; runtime/node/node_start.cpp starts it.
#include "runtime/node/node.hpp"
#include "runtime/node/node_impl.hpp"

#include <chrono>
#include <cstdlib>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/atoms.hpp"
#include "messages/errc.hpp"
#include "runtime/client/demo.hpp"
#include "runtime/common/latency_probe.hpp"
#include "runtime/common/shutdown.hpp"

namespace troupe {

// --- Run -----------------------------------------------------------------

std::int64_t node::impl::in_flight() const {
  std::int64_t n = 0;
  for (auto& p : pipelines)
    n += p.intake->counters().in_flight;
  return n;
}

// An intake fetches when the governor says so and its pipeline is not
// paused cluster-wide.
void node::impl::apply_fetching() {
  std::lock_guard<std::mutex> lock{fetching_mtx};
  auto paused = controls->paused();
  for (auto& p : pipelines) {
    bool on = fetching && !paused.count(p.name);
    if (on == !p.intake->paused())
      continue;
    on ? p.intake->resume() : p.intake->pause();
    spdlog::info("node {}: pipeline {} {}", id(), p.name,
                 on ? "fetching" : "paused");
  }
}

void node::impl::log_notes(const governor_step& step) {
  for (auto note : step.notes)
    switch (note) {
    case governor_note::degraded_store:
    case governor_note::degraded_nats:
      spdlog::warn("node {}: degraded ({} unreachable), not fetching", id(),
                   note == governor_note::degraded_nats ? "NATS"
                                                        : "PostgreSQL");
      break;
    case governor_note::recovered:
      spdlog::info("node {}: dependencies are back, fetching again", id());
      break;
    case governor_note::drain_started:
      spdlog::info("node {}: draining on admin request ({} job(s) in "
                   "flight)",
                   id(), in_flight());
      break;
    case governor_note::drain_cancelled:
      spdlog::info("node {}: drain cancelled, fetching again", id());
      break;
    case governor_note::escalated:
      spdlog::critical("node {}: unhealthy, draining", id());
      break;
    case governor_note::shutting_down:
      spdlog::info("node {}: draining", id());
      break;
    case governor_note::handing_back:
      spdlog::info("node {}: {} job(s) still running, handing them back", id(),
                   in_flight());
      break;
    }
}

void node::impl::carry_out(const governor_step& step) {
  log_notes(step);
  health->store(governor.health() == "unhealthy" ? 2
                : governor.degraded()            ? 1
                                                 : 0);
  if (step.announce)
    caf::anon_send(member_actor, state_atom::value, *step.announce);
  if (step.begin_shutdown) {
    api->stop();
    sweeper->stop();
  }
  {
    std::lock_guard<std::mutex> lock{fetching_mtx};
    fetching = step.fetching;
  }
  apply_fetching();
}

void node::impl::start_demo(const node_run_options& opts) {
  if (opts.demo_jobs <= 0)
    return;
  demo = std::thread{[this, opts] {
    demo_options d;
    d.nats_url = cfg.nats.url;
    d.prefix = cfg.nats.prefix;
    d.pipeline =
        cfg.pipelines.count("demo") ? "demo" : cfg.pipelines.begin()->first;
    d.jobs = opts.demo_jobs;
    demo_rc = run_demo(d);
    if (opts.exit_after_demo)
      request_shutdown();
  }};
}

// A test hook for the escalation path (tests/runtime/node_surface_test.cpp,
// docs/operations.md): TROUPE_FAILPOINT_KILL=<name> kills that watched actor
// ("store", "event publisher", "cluster member", "admin", "pipeline <p>")
// once the node runs, as a crash of it would. Never set in production.
void node::impl::arm_failpoint() {
  const char* name = std::getenv("TROUPE_FAILPOINT_KILL");
  if (!name || !*name)
    return;
  std::vector<std::pair<std::string, caf::actor>> watched{
      {"store", caf::actor_cast<caf::actor>(store)},
      {"event publisher", events},
      {"cluster member", member_actor},
      {"admin", caf::actor_cast<caf::actor>(admin_actor_ref)}};
  for (auto& p : pipelines)
    watched.emplace_back("pipeline " + p.name, p.supervisor);
  for (auto& [what, who] : watched)
    if (what == name) {
      spdlog::warn("node {}: TROUPE_FAILPOINT_KILL: killing the {} actor", id(),
                   what);
      caf::anon_send_exit(who, caf::exit_reason::kill);
      return;
    }
  spdlog::warn("node {}: TROUPE_FAILPOINT_KILL='{}' names no watched actor",
               id(), name);
}

int node::run(const node_run_options& opts) {
  auto& m = *impl_;
  m.apply_fetching(); // cluster-wide pauses hold from the first moment
  m.start_demo(opts);
  m.arm_failpoint();
  for (;;) {
    // Short ticks while stopping: the node exits as soon as it is empty.
    auto tick = m.governor.stopping() ? std::chrono::milliseconds{50}
                                      : std::chrono::milliseconds{200};
    wait_for_shutdown(tick);
    governor_input in;
    in.now = std::chrono::steady_clock::now();
    in.store_healthy = m.store_stats->healthy;
    in.nats_connected = m.nats->health().connected;
    in.drain_requested = m.drain_requested.exchange(false);
    in.resume_requested = m.resume_requested.exchange(false);
    in.shutdown_requested = shutdown_requested();
    in.escalated = !m.dead_actors().empty();
    in.in_flight = m.in_flight();
    auto step = m.governor.step(in);
    m.carry_out(step);
    if (step.exit)
      break;
  }
  if (m.demo.joinable())
    m.demo.join();
  stop();
  int rc = m.governor.exit_code();
  return rc != 0 ? rc : m.demo_rc.load();
}

// --- Stop ----------------------------------------------------------------

void node::impl::stop_all() {
  while (!stops.empty()) {
    auto [what, fn] = std::move(stops.back());
    stops.pop_back();
    spdlog::debug("node {}: stopping {}", id(), what);
    fn();
  }
}

void node::stop() {
  if (impl_->stops.empty())
    return;
  impl_->stop_all();
  spdlog::info("node {}: stopped", impl_->id());
}

node::node(troupe_config cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {}

node::~node() {
  if (impl_->demo.joinable())
    impl_->demo.join();
  stop();
}

int run_node(const troupe_config& cfg, const node_run_options& opts) {
  node n{cfg};
  if (auto err = n.start()) {
    // Asked to stop while it waited for a dependency: a requested stop,
    // not a failure (a supervisor that sent SIGTERM expects 0).
    if (shutdown_requested()) {
      spdlog::info("stopped before it started (it was waiting: {})",
                   message_of(err));
      return 0;
    }
    // An unreachable dependency's message names it ("NATS at ..."); other
    // errors keep their code ("invalid_config: ...").
    spdlog::critical("cannot start: {}", code_of(err) == errc::unavailable
                                             ? message_of(err)
                                             : describe(err));
    return 2;
  }
  auto code = n.run(opts);
  latency_probe::write_out();
  return code;
}

} // namespace troupe
