#pragma once

// Client-side helpers used by `troupe submit` and the demo: submit jobs
// through the request/reply API as any outside client would, and follow
// their lifecycle events until they reach terminal states.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "messages/job.hpp"
#include "runtime/nats/nats_client.hpp"

namespace troupe {

/// What the tracker knows about one job.
struct tracked_job {
  std::string state; ///< last terminal event type, or "" while running
  int retries = 0;
  std::string error;
  std::chrono::steady_clock::time_point submitted;
  /// When job.started arrived (first time), if it did.
  std::chrono::steady_clock::time_point started;
  std::chrono::steady_clock::time_point finished;
  /// The terminal event's latency_ms: publication (JetStream's timestamp)
  /// to the terminal state, measured by the node; -1 if unknown.
  std::int64_t node_latency_ms = -1;
};

/// Follows `<prefix>.events.<pipeline>.>` and records terminal events.
class job_tracker {
public:
  job_tracker(std::shared_ptr<nats_client> nats, subjects subj,
              std::string pipeline);
  ~job_tracker();

  /// Subscribes; call before submitting so no event is missed.
  caf::error start();

  /// Notes that `job_id` was submitted now.
  void submitted(const std::string& job_id);

  /// Waits until every submitted job is terminal or `timeout` passes;
  /// `progress(done, total)` is called about every `tick`.
  bool wait_all(std::chrono::milliseconds timeout,
                const std::function<void(std::size_t, std::size_t)>& progress,
                std::chrono::milliseconds tick = std::chrono::milliseconds{
                    250});

  /// Snapshot of every tracked job.
  std::map<std::string, tracked_job> jobs() const;

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

/// One submission result.
struct submit_reply {
  bool ok = false;
  std::string job_id;
  std::string error_code;
  std::string error_message;
};

/// Submits `bodies` (API request JSON documents) through
/// `<prefix>.api.v1.submit`, pipelining up to `window` requests, and returns
/// one reply per body in order. `on_reply(i)` is called as replies arrive.
caf::expected<std::vector<submit_reply>>
submit_requests(nats_client& nats, const subjects& subj,
                const std::vector<std::string>& bodies, int window,
                std::chrono::milliseconds timeout,
                const std::function<void(std::size_t)>& on_reply = {});

/// Renders a one-line progress bar: `[#####.....] 50% 1000/2000`.
std::string progress_bar(std::size_t done, std::size_t total, int width = 30);

} // namespace troupe
