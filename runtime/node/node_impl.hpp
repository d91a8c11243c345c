#pragma once

// The parts of a node (runtime/node/node.hpp) and how each starts and stops:
// runtime/node/node_start.cpp starts them in order and registers each one's
// stop; runtime/node/node.cpp runs the node and stops them in reverse order.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "actors/job_actor.hpp"
#include "actors/tenant_gate.hpp"
#include "config/config.hpp"
#include "runtime/common/blocking_pool.hpp"
#include "runtime/exec/exec_stage.hpp"
#include "runtime/nats/nats_client.hpp"
#include "runtime/node/admin_bridge.hpp"
#include "runtime/node/heartbeat_bus.hpp"
#include "runtime/node/job_scheduler.hpp"
#include "runtime/node/node.hpp"
#include "runtime/node/node_admin.hpp"
#include "runtime/node/node_governor.hpp"
#include "runtime/node/node_pipelines.hpp"
#include "runtime/node/status_api.hpp"
#include "runtime/node/stranded_sweeper.hpp"
#include "runtime/node/submit_api.hpp"
#include "runtime/node/unrouted_sweeper.hpp"
#include "runtime/observe/http_endpoint.hpp"
#include "runtime/observe/metrics.hpp"
#include "runtime/observe/span_exporter.hpp"
#include "runtime/pg/pg_store.hpp"
#include "runtime/pg/retention.hpp"

namespace troupe {

class submission_log;

/// Milliseconds on the steady clock (the actors' heartbeat).
inline std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct node::impl {
  explicit impl(troupe_config c)
      : cfg(std::move(c)), governor(cfg.node.drain_grace) {}

  // --- What the node is built from, in order of start. ---
  troupe_config cfg;
  std::string secrets; // redacted from every start-up message
  std::shared_ptr<nats_client> nats;
  int schema = 0;
  std::shared_ptr<blocking_pool> pool; // exec stages
  std::shared_ptr<exec_stats> exec_counts;
  std::map<std::string, std::shared_ptr<const pipeline_def>> defs;
  input_limits limits;
  caf::actor_system_config acfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::actor guard;
  store_actor store;
  std::shared_ptr<pg_store_stats> store_stats;
  caf::actor events;
  std::shared_ptr<job_metrics> jmetrics;
  /// Spans of traced jobs to a collector (node.otlp_endpoint), or null.
  std::shared_ptr<span_exporter> spans;
  std::shared_ptr<job_deps> jdeps;
  std::shared_ptr<tenant_gate> gate;
  node_pipelines pipelines;
  std::unique_ptr<heartbeat_bus> hb_bus;
  caf::actor membership_log;
  caf::actor member_actor; // cluster_member
  std::unique_ptr<unrouted_sweeper> sweeper;
  std::unique_ptr<stranded_sweeper> stranded;
  std::shared_ptr<blocking_pool> api_pool;
  std::unique_ptr<submit_api> api;
  std::shared_ptr<blocking_pool> status_pool;
  std::unique_ptr<status_api> status;
  std::unique_ptr<job_scheduler> scheduler;
  std::shared_ptr<blocking_pool> admin_pool;
  /// For `any` requests, which fan out to every node, this one included.
  std::shared_ptr<blocking_pool> admin_any_pool;
  admin_actor admin_actor_ref;
  std::unique_ptr<admin_bridge> admin;
  std::shared_ptr<pipeline_controls> controls;
  std::shared_ptr<retention_pruner> pruner;
  std::unique_ptr<http_endpoint> http;

  // --- Run state. ---
  node_governor governor;
  std::atomic<bool> drain_requested{false};
  std::atomic<bool> resume_requested{false};
  /// Own actors that died (the guard's escalations), for /readyz.
  mutable std::mutex dead_mtx;
  std::vector<std::string> dead;
  /// The governor's health for heartbeats (read on the member's thread).
  std::shared_ptr<std::atomic<int>> health =
      std::make_shared<std::atomic<int>>(0);
  /// When the cluster member last ticked (steady ms; 0: not yet): the
  /// scheduler renews the node's lease only while the actors run.
  std::shared_ptr<std::atomic<std::int64_t>> actor_beat =
      std::make_shared<std::atomic<std::int64_t>>(0);
  std::mutex fetching_mtx; // the run loop and admin workers both apply it
  bool fetching = true;
  std::thread demo;
  std::atomic<int> demo_rc{0};

  /// How to stop each part, in order of start; stop() runs them backwards.
  std::vector<std::pair<std::string, std::function<void()>>> stops;

  void on_stop(std::string what, std::function<void()> fn) {
    stops.emplace_back(std::move(what), std::move(fn));
  }

  const std::string& id() const { return cfg.node.id; }
  duration_ms job_lease() const;
  std::function<std::int64_t()> load_and_beat() const;
  /// This process in node_leases and in the rows of the jobs it holds
  /// ('<node id>#<incarnation>'): a restarted node is another owner.
  std::string lease_owner;
  /// A new random tag per process (8 hex digits) for lease_owner.
  static std::string incarnation();

  caf::error connect_nats();
  caf::error connect_postgres();
  caf::error prepare_jetstream();
  caf::error define_pipelines();
  void spawn_core();
  caf::error start_pipelines();
  caf::error start_membership();
  caf::error start_edges();
  caf::error open_spool(submission_log& log);
  caf::error start_scheduler();
  caf::error start_admin();
  void arm_failpoint();
  admin_actor_deps admin_deps();
  std::shared_ptr<node_admin_context> admin_context();
  caf::error start_http();

  std::int64_t in_flight() const;
  std::vector<std::string> dead_actors() const {
    std::lock_guard<std::mutex> lock{dead_mtx};
    return dead;
  }
  void apply_fetching();
  void log_notes(const governor_step& step);
  void carry_out(const governor_step& step);
  void start_demo(const node_run_options& opts);
  void stop_all();
};

} // namespace troupe
