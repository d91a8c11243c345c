#pragma once

// Which of a batch of job ids already have a row in PostgreSQL. The intake
// asks before it lets fresh deliveries speculate (job_deps::speculate): a
// job an operator cancelled before any node took it (a tombstone), or an id
// re-submitted after the duplicate window, must be claimed first so that
// none of its stages runs. One indexed read per fetched batch, on the
// intake's own thread, never on a CAF scheduler thread.

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

namespace troupe {

class job_presence {
public:
  explicit job_presence(std::string pg_url);
  ~job_presence();

  job_presence(const job_presence&) = delete;
  job_presence& operator=(const job_presence&) = delete;

  /// The ids of `job_ids` that exist, or nullopt if PostgreSQL could not be
  /// asked (then every job claims first). Thread-safe.
  std::optional<std::unordered_set<std::string>>
  existing(const std::vector<std::string>& job_ids);

  /// The pipeline of job `job_id`: "" if there is no such job, nullopt if
  /// PostgreSQL could not be asked. Thread-safe.
  std::optional<std::string> pipeline_of(const std::string& job_id);

private:
  std::string url_;
  std::mutex mtx_;
  struct connection; // wraps pqxx::connection (a typedef in libpqxx 6)
  std::unique_ptr<connection> conn_;
  /// After a failure, pipeline_of does not ask again until then: a request
  /// must not wait for a connect timeout while PostgreSQL is down.
  std::chrono::steady_clock::time_point down_until_{};
};

} // namespace troupe
