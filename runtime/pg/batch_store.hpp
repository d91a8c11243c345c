#pragma once

// Batches (docs/workflows.md): the writes behind troupe.api.v1.batch and
// the reads behind troupe.api.v1.batch_status. A batch and all its jobs are
// created in one transaction, `scheduled` and due now, so the schedulers
// publish them; the batch completes in the transaction that records its
// last job's end (the migration's troupe.settle_batches).
//
// Blocking: call from the API's worker threads, never from a CAF scheduler
// thread.

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <caf/expected.hpp>
#include <nlohmann/json.hpp>

namespace troupe {

class lazy_connection;

/// One job of a batch, validated.
struct batch_job {
  std::string job_id;
  std::string pipeline;
  /// JSON text.
  std::string payload = "null";
  std::int32_t priority = 0;
  std::string correlation_id;
};

/// A batch to create, validated.
struct batch_spec {
  std::string batch_id;
  std::string tenant;
  std::vector<batch_job> jobs;
  /// {"pipeline", "payload"} or null.
  nlohmann::json on_complete;
  nlohmann::json on_success;
  std::string node;
};

/// What became of a batch submission.
struct batch_created {
  /// False: a batch with this id exists already (nothing was created).
  bool created = true;
  /// A job id of the batch names an existing job (nothing was created).
  std::string conflict;
};

class batch_store {
public:
  explicit batch_store(std::string pg_url);
  ~batch_store();

  batch_store(const batch_store&) = delete;
  batch_store& operator=(const batch_store&) = delete;

  /// Creates the batch and its jobs in one transaction. Errors:
  /// unavailable, internal.
  caf::expected<batch_created> create(const batch_spec& spec);

  /// The batch's progress, or nothing if no batch of `tenant` (nullptr:
  /// any) has this id:
  /// {"batch_id", "total", "states": {state: n}, "completed_at_ms",
  /// "succeeded", "failed", "callbacks": {name: {"job_id", "state"}}}.
  caf::expected<std::optional<nlohmann::json>>
  status(const std::string& batch_id, const std::string* tenant);

private:
  std::mutex mtx_;
  std::unique_ptr<lazy_connection> conn_;
};

} // namespace troupe
