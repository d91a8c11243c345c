#pragma once

// The blocking admin verbs about this node itself: `read.tenants`, and
// `control.drain` / `control.resume`. `read.nodes` and `read.stats` are the
// admin actor's own (actors/admin_actor.hpp); runtime/node/node_admin.hpp
// has the store-backed and cluster-wide ones.

#include <functional>
#include <memory>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "config/config.hpp"
#include "messages/heartbeat.hpp"
#include "messages/stats.hpp"
#include "runtime/node/node_pipelines.hpp"

namespace troupe {

class admin_verb_table;
class submit_api;
class tenant_gate;

/// What the verbs read and steer. The references are the node's own and
/// outlive the bridge (the node stops it before tearing them down).
struct node_local_context {
  const tenants_config& tenants;
  std::shared_ptr<tenant_gate> gate;
  const submit_api& api;
  std::function<void()> drain;
  std::function<void()> resume;
};

void add_node_local_verbs(admin_verb_table& bridge,
                          const node_local_context& ctx);

/// Counters of every pipeline supervisor, asked from a non-scheduler thread
/// (admin workers, the HTTP server). Throws if one does not answer in 2 s.
std::vector<pipeline_stats> collect_pipeline_stats(caf::actor_system& sys,
                                                   const node_pipelines& p);

/// The cluster as `member` sees it (a copy of its view); throws if it does
/// not answer in 2 s.
std::vector<member> cluster_view(caf::actor_system& sys, const caf::actor& who);

} // namespace troupe
