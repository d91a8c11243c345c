#pragma once

// What the store says about a job whose message the broker stopped
// tracking (runtime/node/stranded_sweeper.hpp), and the lock that lets one
// node at a time sweep.

#include <memory>
#include <string>

#include <caf/expected.hpp>

namespace troupe {

/// Where a job stands, as far as a stranded message of it matters.
enum class job_standing {
  absent,   ///< no row: nobody ever claimed it; its message must run
  terminal, ///< ended: the message is garbage
  held,     ///< running or retrying under a live lease: a node has it
  in_store, ///< waits in the store (run_at set): the scheduler publishes it
  orphaned, ///< queued, or its lease lapsed: its message must run
};

class stranded_store {
public:
  explicit stranded_store(std::string pg_url);
  ~stranded_store();

  stranded_store(const stranded_store&) = delete;
  stranded_store& operator=(const stranded_store&) = delete;

  /// Takes the cluster-wide sweep lock (a session advisory lock) if no
  /// other node holds it.
  caf::expected<bool> try_lock();
  void unlock();

  caf::expected<job_standing> standing_of(const std::string& job_id);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace troupe
