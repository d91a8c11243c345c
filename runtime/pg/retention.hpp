#pragma once

// Prunes finished jobs (succeeded, cancelled) older than their pipeline's
// retention, with their checkpoints, attempts and events, in small batches
// on its own thread and connection. One node prunes at a time (advisory
// lock); the others skip that round. Dead-lettered jobs are never pruned:
// they stay until replayed or purged by an operator.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

namespace pqxx {
class connection_base;
}

#include "config/config.hpp"

namespace troupe {

class retention_pruner {
public:
  retention_pruner(const troupe_config& cfg);
  ~retention_pruner();

  retention_pruner(const retention_pruner&) = delete;
  retention_pruner& operator=(const retention_pruner&) = delete;

  /// Prunes every `interval` until stop().
  void start();
  void stop();

  /// One round now: deletes what is due (up to `max_batches` batches per
  /// policy); returns the number of jobs pruned, or -1 if another node
  /// holds the lock. Throws admin_failure when PostgreSQL is unreachable.
  std::int64_t run_once(int max_batches = 20);

  /// What would be pruned now, per policy, without deleting:
  /// `{"policies": [{"pipeline", "keep_ms", "due", "oldest_finished_ms"}],
  ///   "dead_letters_kept": N}`.
  nlohmann::json preview();

  std::int64_t pruned_total() const { return pruned_total_; }

  struct policy {
    std::string pipeline; // "" = every pipeline without a policy
    std::int64_t keep_ms = 0;
  };

private:
  /// This node's pipelines, then those other nodes registered, then "".
  std::vector<policy> policies(pqxx::connection_base& c) const;
  /// Records this node's pipelines' retention for the cluster.
  void register_policies();

  troupe_config cfg_;
  std::string url_;
  std::atomic<std::int64_t> pruned_total_{0};
  std::mutex mtx_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
  std::mutex db_mtx_;
};

} // namespace troupe
