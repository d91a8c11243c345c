#pragma once

// What the store says about a job whose message the broker stopped
// tracking (runtime/node/stranded_sweeper.hpp), and the lock that lets one
// node at a time sweep.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

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

  /// Whether `job_id` is a job of `pipeline` that ended (succeeded,
  /// dead-lettered or cancelled): its message is garbage (stream_tidy).
  caf::expected<bool> has_ended(const std::string& job_id,
                                const std::string& pipeline);

  /// A job queued by the scheduler or a replay, and where its message is.
  struct queued_job {
    std::string job_id;
    std::string pipeline;
    std::uint64_t stream_seq = 0;
  };

  /// Jobs queued longer ago than `min_age_ms` (oldest first): their message
  /// should have been taken by now.
  caf::expected<std::vector<queued_job>> long_queued(std::int64_t min_age_ms,
                                                     int limit);

  /// Hands a queued job whose message is gone to the schedulers (due now;
  /// they publish it as a new generation). False if it moved meanwhile.
  caf::expected<bool> requeue(const queued_job& j);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace troupe
