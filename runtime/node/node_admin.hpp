#pragma once

// The admin verbs of a node beyond membership and drain: the store-backed
// ones (answered by any one node, `<prefix>.admin.any...`), the live
// supervision tree, and the cluster-wide steering verbs (cancel, retry,
// replay, pause) which a node carries out for the whole cluster by fanning
// out to every node over `<prefix>.admin.all...`. docs/wire-format.md lists
// each verb's request and result.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "actors/stage_kind.hpp"
#include "runtime/nats/nats_client.hpp"
#include "runtime/node/admin_bridge.hpp"
#include "runtime/pg/admin_store.hpp"
#include "runtime/pg/batch_store.hpp"
#include "runtime/pg/retention.hpp"

namespace troupe {

/// Which pipelines are paused cluster-wide (table pipeline_controls). Polled
/// every `interval` so that a node that missed the fan-out, or started
/// later, converges; `refresh()` applies a change at once.
class pipeline_controls {
public:
  pipeline_controls(std::shared_ptr<admin_store> store,
                    std::chrono::milliseconds interval);
  ~pipeline_controls();

  pipeline_controls(const pipeline_controls&) = delete;
  pipeline_controls& operator=(const pipeline_controls&) = delete;

  /// Reads the table now; false (keeping the last known set) if the store
  /// is unreachable.
  bool refresh();

  /// The last known set of paused pipelines.
  std::set<std::string> paused() const;

  void start();
  void stop();

private:
  std::shared_ptr<admin_store> store_;
  std::chrono::milliseconds interval_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::set<std::string> paused_;
  bool stopping_ = false;
  std::thread thread_;
};

struct node_admin_context {
  caf::actor_system* sys = nullptr;
  std::string node_id;
  std::string prefix;
  std::shared_ptr<nats_client> nats;
  /// Pipeline name -> its supervisor on this node.
  std::map<std::string, caf::actor> supervisors;
  std::map<std::string, std::shared_ptr<const pipeline_def>> pipelines;
  std::shared_ptr<admin_store> store;
  std::shared_ptr<batch_store> batches;
  std::shared_ptr<pipeline_controls> controls;
  std::shared_ptr<retention_pruner> pruner;
  /// Nodes currently up in this node's view (to stop gathering early).
  std::function<std::size_t()> alive_nodes;
  /// Whether this node's intake of a pipeline is paused right now.
  std::function<bool(const std::string&)> intake_paused;
  /// Applies the pause set to the intakes now (set once the node runs).
  std::function<void()> apply_controls;
};

/// Registers jobs, job, dlq, counts, tree (read) and cancel, retry, replay,
/// pause, unpause plus their per-node halves (control).
void add_node_admin_verbs(admin_bridge& bridge,
                          std::shared_ptr<node_admin_context> ctx);

} // namespace troupe
