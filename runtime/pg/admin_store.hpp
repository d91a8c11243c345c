#pragma once

// The queries and commands behind the shell's store-backed verbs (`jobs`,
// `job`, `dlq`, `replay`, `retry`, `cancel`, `pause`, `pipelines`, `stats`).
// PostgreSQL decides: these read and change the system of record directly,
// each change in one transaction that bumps the job's epoch, so whatever a
// node still runs for the old epoch is fenced out.
//
// Blocking: call from admin worker threads only, never from a CAF scheduler
// thread. One connection, used by one caller at a time; it reconnects after
// a broken connection. Failures throw admin_failure with a code.

#include "runtime/pg/pg_url.hpp"
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace troupe {

struct job_filter {
  std::string pipeline;
  std::string state;
  std::string tenant;
  /// Only jobs created at or after this time (ms since the epoch); 0: all.
  std::int64_t since_ms = 0;
  int limit = 50;
  /// Continue after this job id (the previous page's `next`).
  std::string after;
  /// Only the children of this job, or the jobs of this batch
  /// (docs/workflows.md).
  std::string parent;
  std::string batch;
  /// Only jobs whose last error has this code (`timeout`, `exit_code`...).
  std::string error_code;
  /// Only jobs with this text in their id (the idempotency key) or their
  /// correlation id.
  std::string text;
};

/// What a replay/retry changed in the store, to republish the job.
struct replay_ticket {
  std::string job_id;
  std::string pipeline;
  std::int32_t life = 1;
  std::int32_t from_stage = 0;
  std::string payload = "null";
  std::string tenant;
  std::string correlation_id;
  std::int32_t priority = 0;
  /// The job was already queued for this life (publish again, idempotent).
  bool republish_only = false;
};

class admin_store {
public:
  explicit admin_store(std::string pg_url);
  ~admin_store();

  admin_store(const admin_store&) = delete;
  admin_store& operator=(const admin_store&) = delete;

  /// `{"jobs": [...], "next": ID|null}`, newest first.
  nlohmann::json list_jobs(const job_filter& f);

  /// The whole story of a job: row, stages with attempts (every life),
  /// events, dead letter. Values over `max_value_bytes` are cut (flagged
  /// `"truncated": true`) unless `full`.
  nlohmann::json get_job(const std::string& job_id, bool full,
                         std::size_t max_value_bytes = 2048);

  /// Dead letters not replayed since they died, newest first.
  nlohmann::json list_dead_letters(const std::string& pipeline, int limit);

  /// Starts a new life of a job from `from_stage` (default: the stage that
  /// failed, for dead letters; 0 otherwise). `allow` lists the states the
  /// job may be in (e.g. only dead_lettered for replay).
  replay_ticket start_new_life(const std::string& job_id,
                               std::optional<std::int32_t> from_stage,
                               const std::set<std::string>& allow,
                               const std::string& by);

  /// Ids of the dead letters of `pipeline` ("" = all) not yet replayed.
  std::vector<std::string> dead_letter_ids(const std::string& pipeline,
                                           int limit);

  /// Stage names of a job's pipeline as its history knows them (index ->
  /// name), for `--from-stage NAME` on a pipeline this node does not run.
  std::vector<std::string> stage_names(const std::string& job_id);

  /// Cancels a job that no node is running: state cancelled, epoch + 1.
  /// Creates a cancelled tombstone when the job has no row yet and
  /// `pipeline` is given (a message still in the stream then finds it
  /// terminal and is acked). Returns `{"job_id","pipeline","state","was"}`.
  nlohmann::json cancel(const std::string& job_id, const std::string& pipeline,
                        const std::string& by);

  /// The job's state ("" if unknown) and pipeline.
  std::pair<std::string, std::string> state_of(const std::string& job_id);

  /// Makes a job that waits in the store (scheduled, or a long retry wait)
  /// due now, and wakes the schedulers. False if it does not wait there.
  bool run_now(const std::string& job_id);

  /// Hands a new life whose message could not be published to the
  /// schedulers (due now, published by them). False if the job is no
  /// longer queued in that life.
  bool hand_to_scheduler(const std::string& job_id, std::int32_t life);

  /// Notes where a new life's message is in the stream (the stranded
  /// sweeper looks for it there). Best effort.
  void published_as(const std::string& job_id, std::int32_t life,
                    std::uint64_t stream_seq);

  /// Records a pipeline as paused or not (cluster-wide; nodes poll it).
  void set_paused(const std::string& pipeline, bool paused,
                  const std::string& by);

  /// Pipelines recorded as paused.
  std::set<std::string> paused_pipelines();

  /// A trivial query (readiness probe); throws admin_failure if it fails.
  void ping();

  /// Deletes a dead-lettered job and its history (an operator's purge).
  nlohmann::json purge(const std::string& job_id, const std::string& by);

  /// Per pipeline: jobs by state, outcomes in the last minute, retries,
  /// pending dead letters, paused.
  nlohmann::json pipeline_counts();

  /// Cron schedules (runtime/pg/admin_store_schedules.cpp): each with its
  /// next and last slot and the state of its last job.
  nlohmann::json list_schedules();

  /// Pauses or resumes a schedule; unknown_schedule if there is none.
  nlohmann::json set_schedule_paused(const std::string& name, bool paused);

  /// Removes a schedule from the store (a node whose configuration still
  /// has it registers it again when it starts).
  nlohmann::json delete_schedule(const std::string& name);

  /// Fires a schedule's job now (`<name>@manual-<ms>`), whatever its
  /// slots; returns the job id.
  nlohmann::json trigger_schedule(const std::string& name);

private:
  template <class F>
  auto with_connection(const char* what, F&& fn);

  std::string url_;
  std::mutex mtx_;
  struct connection_box; // wraps pqxx::connection (an alias in libpqxx 6)
  std::unique_ptr<connection_box> conn_;
};

} // namespace troupe
