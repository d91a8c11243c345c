#pragma once

// The node's HTTP endpoint (cpp-httplib, its own threads): GET /healthz
// (process alive), GET /readyz (JSON per dependency; 503 unless ready),
// GET /metrics (Prometheus text format). The content comes from callbacks
// the node provides; this class only serves it.

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <caf/expected.hpp>

namespace troupe {

struct http_handlers {
  /// Returns the readiness document and whether the node is ready.
  std::function<std::pair<std::string, bool>()> ready;
  /// Returns the Prometheus text exposition.
  std::function<std::string()> metrics;
};

class http_endpoint {
public:
  http_endpoint();
  ~http_endpoint();

  http_endpoint(const http_endpoint&) = delete;
  http_endpoint& operator=(const http_endpoint&) = delete;

  /// Listens on `addr` ("host:port"; port 0 picks a free one) and serves in
  /// a background thread. Returns the bound port.
  caf::expected<int> start(const std::string& addr, http_handlers handlers);

  /// Stops serving and joins the thread (idempotent).
  void stop();

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

/// Builds Prometheus text exposition with correct HELP/TYPE lines and label
/// escaping.
class prometheus_text {
public:
  /// Starts a metric family.
  void family(const std::string& name, const char* type,
              const std::string& help);

  /// Adds a sample of the current family; labels as {name, value} pairs.
  void sample(const std::string& name,
              const std::vector<std::pair<std::string, std::string>>& labels,
              double value);

  const std::string& str() const { return out_; }

private:
  std::string out_;
};

} // namespace troupe
