#pragma once

// Requests to the node's API as any outside client makes them: many at once
// with a pipelining window, and waiting for jobs to end through
// `<prefix>.api.v1.wait` (docs/wire-format.md).

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include <caf/expected.hpp>
#include <nlohmann/json.hpp>

#include "runtime/nats/nats_client.hpp"

namespace troupe {

/// Sends each of `bodies` as a request to `subject`, at most `window`
/// unanswered at a time, and returns the replies in order.
/// `on_reply(i)` is called as replies arrive. Fails if a reply is missing
/// after `timeout`.
caf::expected<std::vector<std::string>>
request_many(nats_client& nats, const std::string& subject,
             const std::vector<std::string>& bodies, int window,
             std::chrono::milliseconds timeout,
             const std::function<void(std::size_t)>& on_reply = {});

/// How a job ended, as the wait API said.
struct job_end {
  std::string job_id;
  /// The job is terminal (its `state` is final).
  bool done = false;
  std::string state;
  /// The status document (`job`), null on an error.
  nlohmann::json job;
  /// Set when the API refused the request (e.g. `not_found`).
  std::string error_code;
  std::string error_message;
};

/// Waits until each job of `job_ids` ends, or `timeout` passes (then the
/// job's last status, `done` false). `tenant` names whose jobs they are.
/// `progress(done, total)` is called as jobs end.
caf::expected<std::vector<job_end>> wait_for_jobs(
    nats_client& nats, const subjects& subj,
    const std::vector<std::string>& job_ids, const std::string& tenant,
    std::chrono::milliseconds timeout,
    const std::function<void(std::size_t, std::size_t)>& progress = {});

} // namespace troupe
