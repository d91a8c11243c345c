#pragma once

// The faults of one chaos run, drawn from its seed: the same seed gives the
// same schedule (what a fault hits and when), so a failing seed can be run
// again. Faults overlap when one lasts longer than the gap to the next.

#include <cstdint>
#include <string>
#include <vector>

namespace troupe::chaos {

enum class fault_kind {
  kill_one,          ///< SIGKILL a node, restart it after a while
  kill_two,          ///< SIGKILL two nodes at once
  zombie,            ///< SIGSTOP a node past the failure timeout, SIGCONT
  kill_after_effect, ///< the next side-effect stage kills its own node
  nats_restart,      ///< SIGTERM one nats-server, start it again
  nats_loss,         ///< one nats-server gone silent (SIGSTOP) for seconds
  leader_move,       ///< the stream's leader steps down
  pg_restart,        ///< PostgreSQL immediate shutdown, start again
  pg_outage,         ///< PostgreSQL down for 10 s
  cut_pg,            ///< a node cut from PostgreSQL, not from NATS
  cut_nats,          ///< a node cut from NATS, not from PostgreSQL
  cut_both,          ///< a node cut from both
  clock_jump,        ///< n3's wall clock jumps forward or back by minutes
  slow_nats,         ///< a node's links to NATS slowed to a few KiB/s
  nats_crash,        ///< SIGKILL one nats-server (only with --nats-crash)
};

constexpr int fault_kinds = 15;

struct fault {
  fault_kind kind = fault_kind::kill_one;
  int at_ms = 0;     ///< from the start of the load
  int hold_ms = 0;   ///< until it is undone
  int a = -1;        ///< first target (node or server index)
  int b = -1;        ///< second target (kill_two)
  int jump_s = 0;    ///< clock_jump
  int kib_per_s = 0; ///< slow_nats: the links' rate, each way
};

const char* name_of(fault_kind k);

/// "kill_one n2 for 1200 ms at 4.5 s".
std::string describe(const fault& f);

/// True for faults done to a node (its side effects may re-run).
bool hits_node(const fault& f, int node);

/// The faults of a run of `run_ms` milliseconds of load.
/// `nats`: 0 = only restarts (SIGTERM) and leader moves, 1 = also a
/// silenced server (SIGSTOP), 2 = also SIGKILL (see docs/reliability.md for
/// what nats-server 2.9.10 does with the last two).
std::vector<fault> draw_plan(std::uint64_t seed, int run_ms, bool clock_jumps,
                             int nats);

/// A soak's faults: one a minute, of the kinds that hit a node, NATS (the
/// gentle level) or PostgreSQL without an exec stage's help.
std::vector<fault> draw_soak_plan(std::uint64_t seed, int run_ms);

} // namespace troupe::chaos
