#pragma once

// Metrics a node exposes on /metrics, kept cheap on the hot path:
// histograms are fixed buckets of atomic counters (no lock to observe), and
// job metrics are derived from the lifecycle events a node publishes anyway
// (one place, the event publisher), so job and stage actors do no extra work.
// Label values are bounded: pipelines and stages come from the node's
// configuration; anything else is counted as pipeline "other".

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "config/config.hpp"
#include "messages/job.hpp"

namespace troupe {

class prometheus_text;

/// A Prometheus histogram with fixed upper bounds (seconds or a count).
class histogram {
public:
  explicit histogram(std::vector<double> bounds);

  void observe(double value) noexcept;

  /// Writes `<name>_bucket{...,le=...}`, `_sum`, `_count` samples (the
  /// family line is the caller's).
  void
  render(prometheus_text& out, const std::string& name,
         const std::vector<std::pair<std::string, std::string>>& labels) const;

  std::uint64_t count() const noexcept { return count_; }

private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;
  std::atomic<std::uint64_t> count_{0};
  /// Sum in millionths, so that it can be an integer atomic.
  std::atomic<std::int64_t> sum_micro_{0};
};

/// Latency buckets in seconds: 1 ms .. 5 min.
std::vector<double> latency_buckets();

/// Counts of things, 1 .. 4096.
std::vector<double> size_buckets();

/// The stage names of every configured pipeline, by pipeline.
std::map<std::string, std::vector<std::string>>
stage_names_of(const troupe_config& cfg);

/// Job and stage metrics derived from lifecycle events.
class job_metrics {
public:
  /// `stages` maps each configured pipeline to its stage names.
  explicit job_metrics(std::map<std::string, std::vector<std::string>> stages);

  /// Called for every event this node publishes (one actor, in order).
  void on_event(const job_event& ev);

  /// Submissions accepted by this node's API.
  void on_submitted(const std::string& pipeline);

  void render(prometheus_text& out) const;

private:
  std::string pipeline_label(const std::string& p) const;
  std::string stage_label(const std::string& p, const std::string& s) const;

  std::map<std::string, std::vector<std::string>> stages_;
  mutable std::mutex mtx_;
  using key2 = std::pair<std::string, std::string>;
  std::map<std::string, std::int64_t> started_;
  std::map<std::string, std::int64_t> submitted_;
  std::map<key2, std::int64_t> finished_; // pipeline, state
  std::map<std::tuple<std::string, std::string, std::string>, std::int64_t>
      attempts_;                         // pipeline, stage, outcome
  std::map<key2, std::int64_t> retries_; // pipeline, stage
  std::map<key2, std::unique_ptr<histogram>> attempt_seconds_; // p, stage
  std::map<key2, std::unique_ptr<histogram>> latency_seconds_; // p, state
};

} // namespace troupe
