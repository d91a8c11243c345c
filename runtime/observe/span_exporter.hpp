#pragma once

// Exports the spans of traced jobs (messages/trace_context.hpp) as OTLP/HTTP
// JSON to a collector (`node.otlp_endpoint`, e.g. an OpenTelemetry
// Collector on http://127.0.0.1:4318): one span per job run (from its
// publication to its terminal state, parented by the submitter's span) and
// one per stage attempt (parented by the job's span). Spans are built from
// the events this node publishes, queued, and posted in batches by one
// thread; the queue is bounded and a collector that is down loses spans,
// never slows jobs (docs/operations.md).

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "messages/job.hpp"

namespace troupe {

class span_exporter {
public:
  /// `endpoint`: `http://host:port` (the path /v1/traces is added).
  span_exporter(std::string endpoint, std::string node_id);
  ~span_exporter();

  span_exporter(const span_exporter&) = delete;
  span_exporter& operator=(const span_exporter&) = delete;

  /// Queues the span `ev` ends, if any (non-blocking).
  void on_event(const job_event& ev);

  /// Posts what is queued (at most `wait_ms`), then stops the thread.
  void stop(int wait_ms = 2000);

  /// Spans posted and spans lost (queue full or collector failing).
  std::uint64_t exported() const;
  std::uint64_t dropped() const;

  /// The OTLP span for `ev`, or null if `ev` ends no span (public for
  /// tests).
  static nlohmann::json span_of(const job_event& ev);

private:
  void run();
  bool post(std::vector<nlohmann::json>& batch);

  std::string host_;
  int port_ = 4318;
  std::string node_id_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<nlohmann::json> queue_;
  bool stopping_ = false;
  /// Once stopping: spans still queued after this are dropped.
  std::chrono::steady_clock::time_point stop_by_;
  std::uint64_t exported_ = 0;
  std::uint64_t dropped_ = 0;
  std::thread thread_;
};

} // namespace troupe
