#pragma once

// What the status API (runtime/node/status_api.hpp) reads: one job's state,
// progress, attempts and result, as a submitter sees it; and the states of
// many jobs at once, for the waiters' periodic check. PostgreSQL decides:
// a job is finished when its row says so, whatever events went missing.
//
// Blocking: call from the API's worker threads, never from a CAF scheduler
// thread. One connection, shared by its callers one at a time, made again
// after a failure.

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <caf/expected.hpp>
#include <nlohmann/json.hpp>

namespace troupe {

class lazy_connection;

/// One job as its submitter sees it (docs/wire-format.md, status).
struct job_status {
  std::string tenant;
  std::string state;
  /// The document the API answers with.
  nlohmann::json doc;
};

class status_store {
public:
  explicit status_store(std::string pg_url);
  ~status_store();

  status_store(const status_store&) = delete;
  status_store& operator=(const status_store&) = delete;

  /// The job's status, nullopt if it has no row. Errors: unavailable
  /// (PostgreSQL unreachable), internal.
  caf::expected<std::optional<job_status>> status(const std::string& job_id);

  /// The state and tenant of each of `job_ids` that has a row.
  caf::expected<std::map<std::string, std::pair<std::string, std::string>>>
  states(const std::vector<std::string>& job_ids);

private:
  std::mutex mtx_;
  std::unique_ptr<lazy_connection> conn_;
};

} // namespace troupe
