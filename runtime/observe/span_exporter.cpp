#include "runtime/observe/span_exporter.hpp"

#include <algorithm>
#include <chrono>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "messages/event_type.hpp"

namespace troupe {

namespace {

using json = nlohmann::json;

/// Spans queued at most; beyond, new ones are dropped (and counted).
constexpr std::size_t max_queued = 10000;
/// Spans per request.
constexpr std::size_t batch_size = 512;

json attr(const char* key, const std::string& value) {
  return json{{"key", key}, {"value", {{"stringValue", value}}}};
}

std::string unix_nanos(std::int64_t ms) {
  return std::to_string(static_cast<std::uint64_t>(ms) * 1000000ull);
}

} // namespace

json span_exporter::span_of(const job_event& ev) {
  auto type = type_of(ev);
  if (ev.trace_id.empty() || !type)
    return nullptr;
  std::int64_t took = -1;
  std::string name;
  if (ends_attempt(*type)) {
    took = ev.duration_ms;
    name = "stage " + ev.stage;
  } else if (is_terminal(*type)) {
    took = ev.latency_ms;
    name = "job " + ev.pipeline;
  }
  if (took < 0)
    return nullptr;
  bool ok = *type == event_type::stage_succeeded ||
            *type == event_type::job_succeeded;
  json attrs = json::array({attr("troupe.job_id", ev.job_id),
                            attr("troupe.pipeline", ev.pipeline),
                            attr("troupe.node", ev.node)});
  if (ends_attempt(*type)) {
    attrs.push_back(attr("troupe.stage", ev.stage));
    attrs.push_back(attr("troupe.attempt", std::to_string(ev.attempt)));
  } else {
    attrs.push_back(attr("troupe.state", to_string(terminal_state(*type))));
  }
  if (!ev.tenant.empty())
    attrs.push_back(attr("troupe.tenant", ev.tenant));
  json status{{"code", ok ? 1 : 2}};
  if (!ok && !ev.error.empty())
    status["message"] = ev.error_code + ": " + ev.error;
  json span{{"traceId", ev.trace_id},
            {"spanId", ev.span_id},
            {"name", name},
            {"kind", ends_attempt(*type) ? 1 : 5}, // internal, consumer
            {"startTimeUnixNano", unix_nanos(ev.time_ms - took)},
            {"endTimeUnixNano", unix_nanos(ev.time_ms)},
            {"attributes", std::move(attrs)},
            {"status", std::move(status)}};
  if (!ev.parent_span_id.empty())
    span["parentSpanId"] = ev.parent_span_id;
  return span;
}

span_exporter::span_exporter(std::string endpoint, std::string node_id)
    : node_id_(std::move(node_id)) {
  // http://host:port (checked by the config loader).
  auto rest = endpoint.substr(endpoint.find("//") + 2);
  if (auto slash = rest.find('/'); slash != std::string::npos)
    rest.resize(slash);
  auto colon = rest.rfind(':');
  host_ = rest.substr(0, colon);
  if (colon != std::string::npos)
    port_ = std::stoi(rest.substr(colon + 1));
  thread_ = std::thread{[this] { run(); }};
}

span_exporter::~span_exporter() {
  stop(0);
}

void span_exporter::on_event(const job_event& ev) {
  auto span = span_of(ev);
  if (span.is_null())
    return;
  std::lock_guard<std::mutex> guard{mtx_};
  if (stopping_ || queue_.size() >= max_queued) {
    ++dropped_;
    return;
  }
  queue_.push_back(std::move(span));
  if (queue_.size() >= batch_size)
    cv_.notify_one();
}

void span_exporter::stop(int wait_ms) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (stopping_ && !thread_.joinable())
      return;
    stopping_ = true;
    stop_by_ = std::chrono::steady_clock::now() +
               std::chrono::milliseconds{std::max(wait_ms, 0)};
  }
  cv_.notify_one();
  if (thread_.joinable())
    thread_.join();
}

std::uint64_t span_exporter::exported() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return exported_;
}

std::uint64_t span_exporter::dropped() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return dropped_;
}

void span_exporter::run() {
  for (;;) {
    std::vector<json> batch;
    bool last = false;
    {
      std::unique_lock<std::mutex> lock{mtx_};
      cv_.wait_for(lock, std::chrono::seconds{1},
                   [this] { return stopping_ || queue_.size() >= batch_size; });
      last = stopping_;
      if (stopping_ && std::chrono::steady_clock::now() >= stop_by_) {
        // Shutdown waits for a collector only so long.
        dropped_ += queue_.size();
        queue_.clear();
        return;
      }
      auto n = std::min(queue_.size(), batch_size);
      batch.assign(std::make_move_iterator(queue_.begin()),
                   std::make_move_iterator(queue_.begin() + n));
      queue_.erase(queue_.begin(), queue_.begin() + n);
      last = last && queue_.empty();
    }
    if (!batch.empty()) {
      auto n = batch.size();
      bool ok = post(batch);
      std::lock_guard<std::mutex> guard{mtx_};
      (ok ? exported_ : dropped_) += n;
    }
    if (last)
      return;
  }
}

bool span_exporter::post(std::vector<json>& batch) {
  json body{
      {"resourceSpans",
       json::array(
           {{{"resource",
              {{"attributes",
                json::array({attr("service.name", "troupe"),
                             attr("service.instance.id", node_id_)})}}},
             {"scopeSpans", json::array({{{"scope", {{"name", "troupe"}}},
                                          {"spans", std::move(batch)}}})}}})}};
  httplib::Client cli{host_, port_};
  // Short: a collector that hangs must not hold spans (or a shutdown) long.
  cli.set_connection_timeout(1);
  cli.set_read_timeout(2);
  cli.set_write_timeout(2);
  auto res = cli.Post("/v1/traces", body.dump(), "application/json");
  if (res && res->status >= 200 && res->status < 300)
    return true;
  static std::atomic<std::int64_t> failures{0};
  if (failures++ % 100 == 0)
    spdlog::warn("otlp: could not post spans to {}:{}: {}", host_, port_,
                 res ? "HTTP " + std::to_string(res->status)
                     : httplib::to_string(res.error()));
  return false;
}

} // namespace troupe
