// Start-up of a node, continued: the edges that take new work (the
// sweepers and the submit API) and the scheduler (node_start.cpp has the
// order).
#include "runtime/node/node_impl.hpp"

#include <cstdio>
#include <filesystem>
#include <random>
#include <set>

#include <spdlog/spdlog.h>

#include "messages/errc.hpp"
#include "runtime/common/blocking_pool.hpp"
#include "runtime/node/node_startup.hpp"
#include "runtime/node/stranded_sweeper.hpp"
#include "runtime/node/submit_api.hpp"
#include "runtime/node/unrouted_sweeper.hpp"
#include "runtime/pg/batch_store.hpp"
#include "runtime/pg/job_presence.hpp"
#include "runtime/pg/submission_log.hpp"
#include "runtime/pg/tenant_rates.hpp"

namespace troupe {

/// `node.spool_dir`: where the submission log keeps, on disk, what the API
/// accepted while PostgreSQL was away (one file per node id).
caf::error node::impl::open_spool(submission_log& log) {
  const auto& dir = cfg.node.spool_dir;
  if (dir.empty())
    return caf::none;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return make_error(errc::unavailable, "node.spool_dir: cannot create " +
                                             dir + ": " + ec.message());
  if (auto err = log.use_spool(dir + "/submissions-" + id() + ".jsonl"))
    return make_error(errc::unavailable, "node.spool_dir: " + describe(err));
  return caf::none;
}

// The edges that take new work: the sweepers and the submit API.
// Bounded queues: beyond them a request is answered `unavailable` at once.
caf::error node::impl::start_edges() {
  std::set<std::string> names, own_tokens;
  for (auto& p : pipelines) {
    names.insert(p.name);
    own_tokens.insert(p.name);
    if (p.def->config.priorities)
      own_tokens.insert(p.name + ".high");
  }
  sweeper = std::make_unique<unrouted_sweeper>(*sys, nats, cfg.nats, jdeps,
                                               limits, std::move(own_tokens));
  sweeper->start();
  on_stop("sweeper", [this] { sweeper.reset(); });
  stranded = std::make_unique<stranded_sweeper>(
      nats, cfg.nats, cfg.postgres.url,
      std::vector<std::string>{names.begin(), names.end()}, limits);
  api_pool = std::make_shared<blocking_pool>(4, 4096);
  api = std::make_unique<submit_api>(nats, cfg.nats, names, limits, api_pool);
  std::set<std::string> banded;
  for (auto& p : pipelines)
    if (p.def->config.priorities)
      banded.insert(p.name);
  for (auto& p : banded)
    stranded->add_high_band(p);
  api->set_priority_bands(banded);
  // The log is read and trimmed by the stranded sweeper: without a sweeper
  // nobody would, so nothing is written.
  if (cfg.nats.stranded_sweep.count() > 0) {
    auto log = std::make_shared<submission_log>(cfg.postgres.url, 4);
    if (auto err = open_spool(*log))
      return err;
    api->set_submission_log(log);
    stranded->set_submission_log(log);
  }
  stranded->start();
  on_stop("stranded sweeper", [this] { stranded.reset(); });
  api->set_tenants(cfg.tenants);
  api->set_tenant_rates(std::make_shared<tenant_rates>(cfg.postgres.url));
  api->set_batch_store(std::make_shared<batch_store>(cfg.postgres.url), id());
  api->set_presence(std::make_shared<job_presence>(cfg.postgres.url));
  if (jmetrics)
    api->on_accepted(
        [m = jmetrics](const std::string& p) { m->on_submitted(p); });
  on_stop("submit API", [this] {
    api->stop();
    api_pool->stop();
    api.reset();
  });
  if (auto err = api->start())
    return err;
  status_pool = std::make_shared<blocking_pool>(2, 4096);
  status = std::make_unique<status_api>(nats, cfg.nats, cfg.postgres.url,
                                        status_pool);
  on_stop("status API", [this] { status.reset(); }); // its dtor stops it
  return status->start();
}

// The member's view of the node's load, called on each of its ticks: the
// actors' heartbeat too (start_scheduler). Shared, not borrowed: the
// goodbye heartbeat may be read after the intakes are gone.
std::function<std::int64_t()> node::impl::load_and_beat() const {
  std::vector<std::shared_ptr<const intake_counters>> loads;
  for (auto& p : pipelines)
    loads.push_back(p.intake->shared_counters());
  return [loads, beat = actor_beat] {
    beat->store(steady_ms());
    std::int64_t n = 0;
    for (auto& l : loads)
      n += l->in_flight;
    return n;
  };
}

// A running job's lease follows the failure detector: a node that stops
// renewing (dead, or cut off from PostgreSQL) loses its jobs to a live node
// within about `failure_timeout`, not `ack_wait`.
duration_ms node::impl::job_lease() const {
  return std::max<duration_ms>(cfg.cluster.failure_timeout, duration_ms{1000});
}

std::string node::impl::incarnation() {
  std::random_device rd;
  char out[9];
  std::snprintf(out, sizeof out, "%08x", static_cast<unsigned>(rd()));
  return out;
}

// Time in the store: due jobs, leases and rescue (job_scheduler.hpp). It
// starts before the intakes, so that the node's lease exists before its
// first claim, and stops after them (its lease is renewed while they drain).
caf::error node::impl::start_scheduler() {
  job_scheduler_options so;
  so.pg_url = cfg.postgres.url;
  so.node_id = id();
  so.lease_owner = lease_owner;
  so.prefix = cfg.nats.prefix;
  so.stream = cfg.nats.stream;
  so.lease = job_lease();
  so.schedules = cfg.schedules;
  so.gate = gate;
  // Stalled: no member tick for twice the lease, and at least 10 s (a busy
  // machine delays ticks; a stall is much longer).
  so.actors_alive = [beat = actor_beat, stall = std::max<std::int64_t>(
                                            2 * job_lease().count(), 10000)] {
    auto last = beat->load();
    return last == 0 || steady_ms() - last < stall;
  };
  scheduler = std::make_unique<job_scheduler>(nats, so);
  on_stop("scheduler", [this] { scheduler.reset(); });
  // PostgreSQL may be restarting (it answered the migrations a moment ago).
  auto held = with_startup_retries("PostgreSQL", cfg.node.startup_timeout,
                                   secrets, [this]() -> caf::expected<bool> {
                                     if (auto err = scheduler->hold_lease())
                                       return err;
                                     return true;
                                   });
  if (!held)
    return held.error();
  scheduler->start();
  return {};
}

} // namespace troupe
