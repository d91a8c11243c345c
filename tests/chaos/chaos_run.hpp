#pragma once

// One chaos run: a cluster, a workload and a fault schedule from one seed,
// then the verdict. scripts/chaos.sh runs many seeds; CTest runs one short
// seed (label `chaos`).

#include <cstdint>
#include <iosfwd>
#include <string>

#include "verdict.hpp"

namespace troupe::chaos {

struct run_options {
  std::uint64_t seed = 1;
  int jobs = 1500;
  int load_seconds = 60;    ///< faults and submissions happen in this span
  int settle_seconds = 240; ///< bound on the rest, once the load ends
  std::string dir;          ///< "" = a fresh one under /tmp
  bool keep = false;        ///< keep the directory even when the run passes
  /// NATS faults: 0 restarts and leader moves only (--gentle-nats), 1 also
  /// a silenced server, 2 also SIGKILL (--nats-crash). nats-server 2.9.10
  /// can strand messages under 1 and 2 (docs/reliability.md).
  int nats_faults = 1;
  bool strict_stream = true; ///< --lenient-stream: leftovers only noted
  /// --restart-broker: restart the nats-servers one at a time before the
  /// verdict even when the stream answers (checks that the nodes carry on).
  bool restart_broker = false;
  /// Soak instead of a seed: `rate` jobs/s of a 3-stage pipeline for this
  /// many seconds, one fault a minute, samples written to `samples`.
  int soak_seconds = 0;
  int rate = 500;
  std::string samples;
};

struct run_result {
  verdict v;
  std::string dir;
  int faults = 0;
  std::string fault_kinds; ///< "kill_one×3 pg_outage×1 ..."
  std::size_t jobs = 0;
  double seconds = 0;
  std::string setup_error; ///< the cluster could not start
  /// After the drain bound the stream did not answer, or held messages
  /// after its replicas came apart, and the run restarted the nats-servers
  /// one by one, as an operator would, before judging.
  bool broker_restarted = false;
  /// Messages left after that restart, with the replicas apart, and the
  /// run asked `tidy` (as the operator would) to delete those of ended
  /// jobs: its reply, "" if it did not.
  std::string tidied;
};

/// Runs one seed, narrating to `log`.
run_result run_chaos(const run_options& opts, std::ostream& log);

} // namespace troupe::chaos
