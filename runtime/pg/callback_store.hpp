#pragma once

// Completions of callback stages (actors/callback_stage.hpp): the write
// behind troupe.api.v1.complete. The token's hash must match the waiting
// job's callback record; the completion is stored in that record and the
// job is due at once, so the scheduler publishes it and a node resumes it
// (PostgreSQL decides, as for every wait in the store).
//
// Blocking: call from the API's worker threads, never from a CAF scheduler
// thread.

#include <memory>
#include <mutex>
#include <string>

#include <caf/expected.hpp>

namespace troupe {

class lazy_connection;

/// What became of a completion.
enum class completion_result {
  /// Stored: the job resumes.
  completed,
  /// This token's wait was completed before (the first completion holds).
  duplicate,
  /// No waiting callback has this token (unknown job, wrong token, or a
  /// job of another tenant than the one required).
  not_found,
  /// The token's wait is over without a completion (its deadline passed,
  /// or the job was cancelled): too late.
  too_late,
};

class callback_store {
public:
  explicit callback_store(std::string pg_url);
  ~callback_store();

  callback_store(const callback_store&) = delete;
  callback_store& operator=(const callback_store&) = delete;

  /// Completes the wait of `job_id` whose token is `token` with
  /// `completion` (JSON object text: {"ok", "output"} or {"ok", "code",
  /// "message", "retryable"}). `tenant`: required tenant of the job, or
  /// nullptr for any. Errors: unavailable, internal.
  caf::expected<completion_result> complete(const std::string& job_id,
                                            const std::string& token,
                                            const std::string& completion,
                                            const std::string* tenant);

private:
  std::mutex mtx_;
  std::unique_ptr<lazy_connection> conn_;
};

} // namespace troupe
