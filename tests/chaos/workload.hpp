#pragma once

// What a chaos run asks of the cluster: pipelines that cover the ways a job
// can go (side effects recorded under their idempotency key, transient
// failures, a retry parked in PostgreSQL, long stages, a stage that aborts,
// one that hangs past its timeout, poison, a stage that fails until the
// harness "fixes" it and replays), jobs drawn from the seed, and the
// operator's steering during the run (cancels, replays).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "runtime/nats/nats_client.hpp"

namespace troupe::chaos {

/// The configuration of every pipeline, with scripts under `dir`.
std::string pipelines_config(const std::string& dir);

/// Writes the stage scripts into `dir`.
void write_stage_scripts(const std::string& dir);

/// The pipelines a run uses, and the state each must end in.
const std::vector<std::string>& pipeline_names();

/// The pipeline of a chaos job id (`<pipeline>-<seed>-<n>`).
std::string pipeline_of(const std::string& job_id);

struct planned_job {
  std::string id;
  std::string pipeline;
  int at_ms = 0; ///< when it is submitted, from the start of the load
};

/// `count` jobs spread over `run_ms`, drawn from `seed`.
std::vector<planned_job> draw_jobs(std::uint64_t seed, int count, int run_ms);

/// A soak's jobs: `count` jobs of pipeline `soak` spread over `run_ms`.
std::vector<planned_job> soak_jobs(std::uint64_t seed, int count, int run_ms);

/// Submits and steers, as an outside client with its own connection to the
/// servers (not through the nodes' proxies). A submission that fails or
/// gets no reply is sent again with the same key until it is accepted.
/// One thread submits and cancels; others may read what it recorded.
class client_driver {
public:
  client_driver(std::shared_ptr<nats_client> nats, std::string prefix);

  /// Submits every due job not accepted yet; returns how many it sent.
  int submit_due(const std::vector<planned_job>& jobs, int now_ms);

  /// Cancels `job_id` (a `slow` job); returns the reply, for the log. A
  /// cancel the reply confirms (state `cancelled`) is noted.
  std::string cancel(const std::string& job_id);

  /// Replays every dead-lettered job of `pipeline`; how many it replayed.
  int replay_all(const std::string& pipeline);
  /// Asks a node to delete the messages of ended jobs from the stream
  /// (`tidy`); its reply as text.
  std::string tidy();

  std::set<std::string> accepted() const;
  std::size_t accepted_count() const;
  bool was_accepted(const std::string& job_id) const;
  /// Jobs whose cancel was confirmed: they must end cancelled.
  std::set<std::string> cancelled() const;
  int submit_attempts() const { return sends_; }
  int refused() const { return refused_; }

private:
  std::shared_ptr<nats_client> nats_;
  std::string prefix_;
  mutable std::mutex mtx_;
  std::set<std::string> accepted_;
  std::set<std::string> cancelled_;
  std::size_t next_ = 0;             ///< first job not yet submitted once
  std::vector<std::size_t> pending_; ///< submitted, not accepted
  int sends_ = 0;
  int refused_ = 0;
};

} // namespace troupe::chaos
