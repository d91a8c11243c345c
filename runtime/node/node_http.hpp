#pragma once

// What a node serves on GET /readyz (each dependency with its status and
// latency) and GET /metrics (Prometheus text). runtime/observe/http_endpoint
// serves them, and /healthz; run_node (runtime/node/node.cpp) gathers what they
// read.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "config/config.hpp"
#include "messages/stats.hpp"
#include "runtime/node/node_pipelines.hpp"
#include "runtime/observe/http_endpoint.hpp"

namespace troupe {

struct scheduler_stats;
struct sweeper_stats;

struct exec_stats;
class job_metrics;
class nats_client;
class retention_pruner;
struct pg_store_stats;

/// What the handlers read. The references are the node's own state: they
/// must outlive the HTTP endpoint, which the node stops before it tears any
/// of them down.
struct node_http_sources {
  const troupe_config& cfg;
  caf::actor_system& sys;
  nats_client& nats;
  /// The schema version the migrations left at start-up.
  int schema_version;
  /// The node's pipelines with their intakes.
  const node_pipelines& pipelines;
  /// The cluster_member actor (its view of the cluster).
  caf::actor member;
  std::shared_ptr<pg_store_stats> store_stats;
  std::shared_ptr<retention_pruner> pruner;
  /// Null when node.metrics is off.
  std::shared_ptr<job_metrics> jmetrics;
  /// Counters of every pipeline supervisor; throws if one does not answer.
  std::function<std::vector<pipeline_stats>()> collect_stats;
  /// The exec stages' queue and processes.
  std::shared_ptr<exec_stats> exec;
  /// Names of the node's own actors that died (see actors/node_guard.hpp):
  /// any makes the node unhealthy.
  std::function<std::vector<std::string>()> dead_actors;
  /// The node's scheduler (due jobs, leases, rescue).
  std::shared_ptr<scheduler_stats> scheduler;
  /// The stranded sweeper's repairs, and submissions the API could not log.
  std::shared_ptr<sweeper_stats> sweeper;
  std::function<std::int64_t()> unlogged;
};

/// Builds the /readyz and /metrics handlers of a node.
http_handlers make_node_http_handlers(const node_http_sources& src);

} // namespace troupe
