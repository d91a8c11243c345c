#pragma once

// Where the latency scenario's time goes, part by part: the node stamps
// each job at the serial path's hand-offs (runtime/common/latency_probe.hpp,
// on while TROUPE_LATENCY_PROBE is set), the benchmark's client adds when
// it sent the job and when its terminal event arrived, and the parts are
// the differences, per job. One column per node run: each part's median
// and its median among the slowest 2 % of jobs (the tail the p99 is in).

#include <cstdint>
#include <map>
#include <string>
#include <sys/types.h>
#include <utility>
#include <vector>

namespace troupe {
class job_tracker;
}

namespace troupe::bench {

/// One job's stamps, point → µs on the system clock.
using job_stamps = std::map<std::string, std::int64_t>;

/// One part of the path: its name and the two points it lies between.
struct path_part {
  const char* from;
  const char* to;
  const char* what;
};

/// The serial path's parts, in order, then the API reply's (off the path).
const std::vector<path_part>& path_parts();

/// The stamps of one probe file ("job point µs" lines), by job.
std::map<std::string, job_stamps> read_probe_file(const std::string& path);

/// Per part (path_parts() order): median µs over `jobs`, and the median
/// among the jobs whose client.sent → client.event is at or above its 98th
/// percentile; -1 where no job has both points.
struct part_figures {
  std::vector<double> median;
  std::vector<double> tail;
  std::size_t jobs = 0;
};
part_figures summarize(const std::map<std::string, job_stamps>& jobs);

class timeline {
public:
  /// Probe files go to `<dir>/probe.<pid>`.
  explicit timeline(std::string dir) : dir_(std::move(dir)) {}
  ~timeline() { collect(false); }
  timeline(const timeline&) = delete;
  timeline& operator=(const timeline&) = delete;

  /// Whether nodes started from now on stamp their jobs (the environment
  /// they inherit).
  void collect(bool on);

  /// Adds the client's side of the jobs `tracker` saw end.
  void add_client(const job_tracker& tracker);

  /// After node `pid` stopped (it writes its stamps then): the column
  /// `label` from its stamps and the client's.
  void add_node(pid_t pid, const std::string& label);

  /// The table (markdown) with a line saying what it is, or "" if no node
  /// was added.
  std::string markdown() const;

private:
  std::string dir_;
  std::map<std::string, job_stamps> client_;
  std::vector<std::pair<std::string, part_figures>> columns_;
};

} // namespace troupe::bench
