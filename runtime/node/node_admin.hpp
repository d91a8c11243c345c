#pragma once

// The blocking admin verbs of a node, run by the admin actor on a worker
// pool (actors/admin_actor.hpp): the store-backed ones (answered by any one
// node, `<prefix>.admin.any...`) and the cluster-wide steering verbs
// (cancel, retry, replay, pause) which a node carries out for the whole
// cluster by fanning out to every node over `<prefix>.admin.all...`.
// docs/wire-format.md lists each verb's request and result.

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

#include "actors/admin_verbs.hpp"
#include "actors/stage_kind.hpp"
#include "runtime/nats/nats_client.hpp"
#include "runtime/node/stream_tidy.hpp"
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
  std::string node_id;
  std::string prefix;
  std::shared_ptr<nats_client> nats;
  std::map<std::string, std::shared_ptr<const pipeline_def>> pipelines;
  std::shared_ptr<admin_store> store;
  std::shared_ptr<batch_store> batches;
  std::shared_ptr<pipeline_controls> controls;
  std::shared_ptr<retention_pruner> pruner;
  /// Deletes messages of ended jobs the broker left in the stream.
  std::shared_ptr<stream_tidy> tidy;
  /// Nodes currently up in this node's view (to stop gathering early).
  std::function<std::size_t()> alive_nodes;
  /// Applies the pause set to the intakes now (set once the node runs).
  std::function<void()> apply_controls;
};

/// Registers the blocking verbs jobs, job, batch, dlq, retention, counts,
/// schedules (read) and cancel, retry, replay, prune, purge, pause, unpause,
/// schedule, tidy, refresh_controls (control). The live ones (tree,
/// cancel_local, retry_local) are the admin actor's (actors/admin_actor.hpp).
void add_node_admin_verbs(admin_verb_table& bridge,
                          std::shared_ptr<node_admin_context> ctx);

} // namespace troupe
