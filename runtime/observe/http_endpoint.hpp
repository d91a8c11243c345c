#pragma once

// The node's HTTP endpoint (cpp-httplib, its own threads): GET /healthz
// (process alive), GET /readyz (JSON per dependency; 503 unless ready),
// GET /metrics (Prometheus text format), and GET/POST /api/v1/... (the JSON
// API over the admin verbs, runtime/node/http_api.hpp) and GET /ui/...
// (the dashboard's files, runtime/ui). The content comes
// from callbacks the node provides; this class only serves it.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include <caf/expected.hpp>

namespace troupe {

/// One request to /api/v1/..., as the API sees it.
struct api_request {
  std::string method;
  /// Decoded path, e.g. "/api/v1/jobs/order-42".
  std::string path;
  /// Every parameter, repeated ones too (`job=a&job=b`).
  std::multimap<std::string, std::string> query;
  std::string body;
  /// The Authorization header, if any.
  std::string authorization;
  std::string remote_addr;
};

struct api_response {
  int status = 200;
  /// JSON.
  std::string body;
  /// Set for a stream (Server-Sent Events): called once on the request's
  /// thread with a writer that returns false once the client is gone;
  /// `body` is then unused.
  std::function<void(const std::function<bool(const std::string&)>&)> stream;
};

/// Largest request body the API reads (a steering request is a few fields).
constexpr std::size_t api_max_body = 64 * 1024;

/// A file served as it is (the dashboard's pages and scripts).
struct static_file {
  std::string_view bytes;
  std::string content_type;
};

struct http_handlers {
  /// Returns the readiness document and whether the node is ready.
  std::function<std::pair<std::string, bool>()> ready;
  /// Returns the Prometheus text exposition.
  std::function<std::string()> metrics;
  /// Answers /api/v1/...; unset: 404.
  std::function<api_response(const api_request&)> api;
  /// Answers GET /ui and /ui/...; nullopt or unset: 404.
  std::function<std::optional<static_file>(const std::string& path)> files;
  /// Called first when the endpoint stops (ends open streams).
  std::function<void()> stopping;
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
