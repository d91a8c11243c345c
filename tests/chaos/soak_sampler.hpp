#pragma once

// What a soak run watches over time, one line every few seconds into a
// tab-separated file: each node's resident memory, open descriptors and
// threads (from /proc), and the cluster's pace and latency (from
// PostgreSQL: jobs finished in the last interval, p50/p99 from the first
// stage's start to the terminal commit), and the backlog (messages the
// stream holds: accepted, not finished; and jobs due by now that the
// generator has not had accepted yet). scripts/soak.sh draws it.
//
// The backlog is not read from PostgreSQL: a job may get its row only when
// it ends (speculation), so rows say nothing of what is waiting.

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace troupe::chaos {

/// What waits: messages in the stream, and due jobs not accepted yet.
struct backlog_sample {
  long stream = -1; ///< -1: JetStream could not be asked
  long behind = 0;
};

struct process_sample {
  long rss_kb = 0;
  int fds = 0;
  int threads = 0;
};

/// Reads /proc/<pid>; zeros when the process is gone.
process_sample sample_process(int pid);

class soak_sampler {
public:
  /// `pids()` names the node processes now (they change across restarts).
  soak_sampler(std::string file, std::string pg_url,
               std::function<std::vector<int>()> pids,
               std::function<backlog_sample()> backlog,
               std::chrono::seconds every);
  ~soak_sampler();

  void start();
  void stop();

private:
  void loop();
  std::string sample_line(double t);

  std::ofstream out_;
  std::string pg_url_;
  std::function<std::vector<int>()> pids_;
  std::function<backlog_sample()> backlog_;
  std::chrono::seconds every_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

} // namespace troupe::chaos
