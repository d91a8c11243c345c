#include "runtime/observe/metrics.hpp"

#include <cmath>
#include <cstdio>

#include "messages/event_type.hpp"
#include "runtime/observe/http_endpoint.hpp"

namespace troupe {

histogram::histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(new std::atomic<std::uint64_t>[bounds_.size()]) {
  for (std::size_t i = 0; i < bounds_.size(); ++i)
    buckets_[i] = 0;
}

void histogram::observe(double value) noexcept {
  for (std::size_t i = 0; i < bounds_.size(); ++i)
    if (value <= bounds_[i]) {
      buckets_[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micro_.fetch_add(static_cast<std::int64_t>(std::llround(value * 1e6)),
                       std::memory_order_relaxed);
}

void histogram::render(
    prometheus_text& out, const std::string& name,
    const std::vector<std::pair<std::string, std::string>>& labels) const {
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    auto l = labels;
    char le[32];
    std::snprintf(le, sizeof(le), "%g", bounds_[i]);
    l.emplace_back("le", le);
    out.sample(name + "_bucket", l, static_cast<double>(cumulative));
  }
  auto total = count_.load(std::memory_order_relaxed);
  auto l = labels;
  l.emplace_back("le", "+Inf");
  // Observations above the last bound only show in +Inf and _count.
  out.sample(name + "_bucket", l, static_cast<double>(total));
  out.sample(name + "_sum", labels,
             static_cast<double>(sum_micro_.load(std::memory_order_relaxed)) /
                 1e6);
  out.sample(name + "_count", labels, static_cast<double>(total));
}

std::vector<double> latency_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
          0.5,   1,      2.5,   5,    10,    30,   60,  300};
}

std::vector<double> size_buckets() {
  return {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
}

std::map<std::string, std::vector<std::string>>
stage_names_of(const troupe_config& cfg) {
  std::map<std::string, std::vector<std::string>> out;
  for (auto& [name, pc] : cfg.pipelines)
    for (auto& sc : pc.stages)
      out[name].push_back(sc.name);
  return out;
}

job_metrics::job_metrics(std::map<std::string, std::vector<std::string>> stages)
    : stages_(std::move(stages)) {}

std::string job_metrics::pipeline_label(const std::string& p) const {
  return stages_.count(p) ? p : std::string{"other"};
}

std::string job_metrics::stage_label(const std::string& p,
                                     const std::string& s) const {
  auto i = stages_.find(p);
  if (i == stages_.end())
    return "other";
  for (auto& name : i->second)
    if (name == s)
      return s;
  return "other";
}

void job_metrics::on_submitted(const std::string& pipeline) {
  std::lock_guard<std::mutex> guard{mtx_};
  ++submitted_[pipeline_label(pipeline)];
}

void job_metrics::on_event(const job_event& ev) {
  auto p = pipeline_label(ev.pipeline);
  std::lock_guard<std::mutex> guard{mtx_};
  auto t = type_of(ev);
  if (!t)
    return;
  if (*t == event_type::job_started) {
    ++started_[p];
  } else if (ends_attempt(*t)) {
    auto s = stage_label(ev.pipeline, ev.stage);
    bool ok = *t == event_type::stage_succeeded;
    ++attempts_[{p, s, ok ? "succeeded" : "failed"}];
    if (ev.duration_ms >= 0) {
      auto& h = attempt_seconds_[{p, s}];
      if (!h)
        h = std::make_unique<histogram>(latency_buckets());
      h->observe(static_cast<double>(ev.duration_ms) / 1000.0);
    }
  } else if (*t == event_type::job_retrying) {
    ++retries_[{p, stage_label(ev.pipeline, ev.stage)}];
  } else if (is_terminal(*t)) {
    auto state = to_string(terminal_state(*t));
    ++finished_[{p, state}];
    if (ev.latency_ms >= 0) {
      auto& h = latency_seconds_[{p, state}];
      if (!h)
        h = std::make_unique<histogram>(latency_buckets());
      h->observe(static_cast<double>(ev.latency_ms) / 1000.0);
    }
  }
}

void job_metrics::render(prometheus_text& out) const {
  std::lock_guard<std::mutex> guard{mtx_};
  out.family("troupe_jobs_submitted_total", "counter",
             "Jobs accepted by this node's submission API.");
  for (auto& [p, n] : submitted_)
    out.sample("troupe_jobs_submitted_total", {{"pipeline", p}},
               static_cast<double>(n));
  out.family(
      "troupe_jobs_started_total", "counter",
      "Jobs this node started (first run, or resumed after a failover).");
  for (auto& [p, n] : started_)
    out.sample("troupe_jobs_started_total", {{"pipeline", p}},
               static_cast<double>(n));
  out.family("troupe_jobs_total", "counter",
             "Jobs that reached a terminal state on this node, by state.");
  for (auto& [k, n] : finished_)
    out.sample("troupe_jobs_total",
               {{"pipeline", k.first}, {"state", k.second}},
               static_cast<double>(n));
  out.family("troupe_stage_attempts_total", "counter",
             "Stage attempts that ended, by outcome.");
  for (auto& [k, n] : attempts_)
    out.sample("troupe_stage_attempts_total",
               {{"pipeline", std::get<0>(k)},
                {"stage", std::get<1>(k)},
                {"outcome", std::get<2>(k)}},
               static_cast<double>(n));
  out.family("troupe_stage_retries_total", "counter",
             "Failed attempts that were scheduled for a retry.");
  for (auto& [k, n] : retries_)
    out.sample("troupe_stage_retries_total",
               {{"pipeline", k.first}, {"stage", k.second}},
               static_cast<double>(n));
  out.family("troupe_stage_attempt_duration_seconds", "histogram",
             "Duration of stage attempts.");
  for (auto& [k, h] : attempt_seconds_)
    h->render(out, "troupe_stage_attempt_duration_seconds",
              {{"pipeline", k.first}, {"stage", k.second}});
  out.family("troupe_job_latency_seconds", "histogram",
             "From publication of the job to its terminal state.");
  for (auto& [k, h] : latency_seconds_)
    h->render(out, "troupe_job_latency_seconds",
              {{"pipeline", k.first}, {"state", k.second}});
}

} // namespace troupe
