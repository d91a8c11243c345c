#pragma once

// The troupe node a benchmark runs: its configuration, and what the
// benchmark reads of the running process (CPU, memory, store profile).

#include <map>
#include <string>
#include <sys/types.h>
#include <vector>

#include "bench/bench_common.hpp"

namespace troupe {
class job_tracker;
class nats_client;
} // namespace troupe

namespace troupe::bench {

struct node_flags {
  bool metrics = true;
  /// node.speculate = 20ms (else 0).
  bool speculate = true;
  bool send_asap = false;
  /// Extra `key = value` lines for the [node] section.
  std::vector<std::string> node_options;
};

/// The benchmark's node configuration: pipelines tput (3 noop stages), one
/// (1 noop), retry (fails once) and exec (/bin/cat).
std::string bench_node_config(const std::string& nats_url,
                              const std::string& pg_url, node_flags f);

/// The values of the unlabelled metrics `names` on the /metrics page of the
/// node whose log is `log_path` (those it does not show are left out).
std::map<std::string, double>
node_metrics(const std::string& log_path,
             const std::vector<std::string>& names);

/// The metrics add_commit_sample reads.
std::vector<std::string> commit_metric_names();

/// Adds to `f` the node's average commit (ms) between two readings of
/// commit_metric_names(), and the average batch size to its note.
void add_commit_sample(figure& f, std::map<std::string, double> before,
                       std::map<std::string, double> after);

/// Submits `rate * secs` jobs (keys `key_prefix` + i) at `rate` per second
/// through the API's request/reply, one at a time, as `tracker` follows
/// them; the API round trips in ms.
std::vector<double> submit_paced(nats_client& client, job_tracker& tracker,
                                 const std::string& pipeline,
                                 const std::string& key_prefix, int rate,
                                 int secs);

/// Average store batch size and commit time from the /metrics of the node
/// whose log is `log_path` ("" if it cannot be read).
std::string store_profile(const std::string& log_path);

/// CPU seconds `pid` used so far (user + system).
double process_cpu_seconds(pid_t pid);

/// CPU seconds of `root` and every live child of it (user + system), plus
/// what its children that ended used: a postmaster and its backends.
double process_tree_cpu_seconds(pid_t root);

/// What the servers spent, read at one moment: PostgreSQL's CPU (the
/// postmaster's tree), nats-server's CPU and the WAL position.
struct server_costs {
  double pg_cpu_s = 0;
  double nats_cpu_s = 0;
  double wal_bytes = 0;
};
server_costs read_server_costs(const std::string& pg_url, pid_t postmaster,
                               pid_t nats_server);

/// Rows of the jobs whose id starts with `prefix`, in the four tables a
/// job writes.
double rows_of_jobs(const std::string& pg_url, const std::string& prefix);

/// Per-job figures of what the servers spent during runs of `jobs` jobs.
struct cost_figures {
  figure pg_cpu{"throughput", "PostgreSQL CPU per job", "µs", {}, ""};
  figure nats_cpu{"throughput", "nats-server CPU per job", "µs", {}, ""};
  figure wal{"throughput", "WAL written per job", "bytes", {}, ""};
  figure rows{"throughput",
              "rows stored per job",
              "rows",
              {},
              "jobs, stage_checkpoints, stage_attempts, job_events"};
  /// `stored`: the rows the run's jobs have in those four tables.
  void add(const server_costs& before, const server_costs& after, int jobs,
           double stored);
};

/// Resident memory of `pid` in KiB (-1 if unknown).
long process_rss_kib(pid_t pid);

/// The p-quantile of `v` (0 if empty).
double q(std::vector<double> v, double p);

/// What one latency run measured, per succeeded job, in ms.
struct latency_set {
  std::vector<double> total;   // submit → succeeded
  std::vector<double> waited;  // submit → started
  std::vector<double> on_node; // publication → terminal, from the event
};

/// The samples of the jobs `tracker` saw succeed.
latency_set latency_samples(const job_tracker& tracker);

/// Writes PostgreSQL's 15 statements that took the most time (calls, total
/// and mean ms, rows, query) to `path`, from pg_stat_statements.
void write_statements(const std::string& pg_url, const std::string& path);

/// The command line of bench_runtime (see its usage comment).
options parse_options(int argc, char** argv);

} // namespace troupe::bench
