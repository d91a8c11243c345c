#pragma once

// The verdict of a chaos run, read from the systems of record: PostgreSQL
// (one row per accepted job, in the state it must end in; no stage of a
// life succeeded twice), the side-effect log the stages wrote (a re-run
// only inside a fault's window), JetStream (the stream and consumers empty)
// and the harness's record of how every node process ended. Events are
// never consulted.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "chaos_cluster.hpp"
#include "runtime/nats/nats_client.hpp"

namespace troupe::chaos {

/// A fault as it happened, in wall-clock milliseconds.
struct fault_window {
  std::string what;
  std::int64_t from_ms = 0;
  std::int64_t to_ms = 0;
  int node = -1;        ///< the node it hit, -1 for none in particular
  bool cluster = false; ///< hits every node (PostgreSQL, NATS, any node)
};

struct verdict_input {
  std::string pg_url;
  std::set<std::string> planned;  ///< every id the harness submitted
  std::set<std::string> accepted; ///< ids whose submission was confirmed
  std::set<std::string> cancel_asked;
  std::set<std::string> cancelled; ///< cancels the cluster confirmed
  std::vector<fault_window> faults;
  std::vector<node_exit> exits;
  std::string effects_file;
  /// Leftover messages fail the run (scripts/chaos.sh) or are only noted
  /// (CTest's seed: nats-server 2.9.10 can strand messages of jobs that
  /// all ended correctly, docs/reliability.md).
  bool strict_stream = true;
  /// The run's directory (servers' logs under nats-s<i>/).
  std::string dir;
};

struct verdict {
  std::vector<std::string> violations;
  std::vector<std::string> notes;    ///< reported, not failing
  std::map<std::string, int> states; ///< rows per terminal state
  int effects = 0;
  int reruns = 0; ///< side effects beyond the first, each inside a window
  /// The first sign in the servers' logs that the broker's replicas went
  /// apart (a stream reset, a consumer without quorum, a replica behind
  /// its leader's log), "" when none: what follows it is nats-server
  /// 2.9.10's to answer for first (docs/reliability.md).
  std::string broker;
  bool ok() const { return violations.empty(); }
};

/// Rows of chaos jobs not yet in a terminal state.
std::int64_t unfinished(const std::string& pg_url);

/// Rows of chaos jobs in a terminal state.
std::int64_t finished(const std::string& pg_url);

/// Dead-lettered jobs of `pipeline`.
std::int64_t dead_letters(const std::string& pg_url,
                          const std::string& pipeline);

/// Messages left in the stream; -1 when JetStream cannot be asked.
/// `detail` says where, with each consumer's pending and unacked counts;
/// `phantoms` gets how many deliveries the consumers still count beyond
/// the messages the stream holds (2.9.10's bookkeeping after a replica
/// reset: an unacked entry for a message already gone; nothing can be
/// delivered from it).
std::int64_t stream_leftovers(nats_client& nats,
                              const std::vector<std::string>& pipelines,
                              std::string* detail = nullptr,
                              std::int64_t* phantoms = nullptr);

/// The earliest line of the servers' logs under `dir` that shows the
/// broker's replicas apart ("s2 20:42:56.853: ... stream store EOF"), or "".
std::string broker_divergence(const std::string& dir);

/// Judges the side effects: each re-run must follow a run that killed its
/// own node (`killed-by-<pid>` under `in.dir`), or fall inside the window
/// of a fault that hit the node of the run before it.
void judge_effects(const verdict_input& in, verdict& v);

/// Judges the run.
verdict judge(const verdict_input& in, nats_client& nats);

} // namespace troupe::chaos
