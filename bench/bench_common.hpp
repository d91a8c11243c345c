#pragma once

// What the benchmark drivers share: options, reported figures, helpers and
// the job-shaped messages both the ceilings and the scenarios publish.

#include <chrono>
#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nats/nats.h>

namespace troupe::bench {

using clock_type = std::chrono::steady_clock;

struct options {
  std::string troupe = "build/troupe";
  int runs = 3;
  bool quick = false;
  std::string markdown;
  /// Where to write PostgreSQL's statements by total time after the
  /// throughput scenario (needs pg_stat_statements preloaded).
  std::string statements;
  std::set<std::string> only;
  /// Lines added to the node's [node] section (--node-option KEY=VALUE,
  /// repeatable), to measure a setting without editing the benchmark.
  std::vector<std::string> node_options;
};

/// One reported figure: median of the runs, with min and max.
struct figure {
  std::string scenario;
  std::string what;
  std::string unit;
  std::vector<double> samples;
  std::string note;

  double median() const;
  double min() const;
  double max() const;
};

/// A figure with no samples yet.
inline figure named(std::string scenario, std::string what, std::string unit,
                    std::string note = "") {
  return {std::move(scenario),
          std::move(what),
          std::move(unit),
          {},
          std::move(note)};
}

/// Thrown on any failure so that destructors stop the servers and nodes.
struct bench_failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The figures as a markdown table, one row each, in order.
std::string figures_table(const std::vector<figure>& figs);

[[noreturn]] void fail(const std::string& msg);

/// A free TCP port on 127.0.0.1.
int free_port();
double seconds_since(clock_type::time_point t0);
/// Milliseconds since the epoch (the database's clock agrees: same machine).
std::int64_t wall_ms();
std::string read_text(const std::string& path);
/// `v` with `digits` decimals.
std::string fmt(double v, int digits);

/// A payload of roughly the size of a typical small job (~200 bytes).
std::string job_body(int i);

/// Publishes `n` messages to `subject` asynchronously (acks awaited at the
/// end), each with Nats-Msg-Id `<prefix><i>`. Returns seconds taken.
double publish_all(jsCtx* js, const std::string& subject,
                   const std::string& id_prefix, int n);

} // namespace troupe::bench
