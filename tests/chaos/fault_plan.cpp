#include "fault_plan.hpp"

#include <array>
#include <random>

#include "chaos_cluster.hpp"

namespace troupe::chaos {

namespace {

constexpr std::array<const char*, fault_kinds> names{
    "kill_one",     "kill_two",  "zombie",      "kill_after_effect",
    "nats_restart", "nats_loss", "leader_move", "pg_restart",
    "pg_outage",    "cut_pg",    "cut_nats",    "cut_both",
    "clock_jump",   "slow_nats", "nats_crash"};

/// Draws from [lo, hi].
int uniform(std::mt19937_64& rng, int lo, int hi) {
  return std::uniform_int_distribution<int>{lo, hi}(rng);
}

/// When each resource is free again: nodes, the NATS cluster (one server
/// down at a time keeps a quorum), PostgreSQL.
struct busy_until {
  std::array<int, node_count> node{};
  int nats = 0;
  int pg = 0;
};

bool is_node_fault(fault_kind k) {
  switch (k) {
  case fault_kind::kill_one:
  case fault_kind::kill_two:
  case fault_kind::zombie:
  case fault_kind::cut_pg:
  case fault_kind::cut_nats:
  case fault_kind::cut_both:
  case fault_kind::slow_nats:
    return true;
  default:
    return false;
  }
}

/// How long a fault of kind `k` lasts.
int hold_for(std::mt19937_64& rng, fault_kind k) {
  switch (k) {
  case fault_kind::kill_one:
    return uniform(rng, 300, 3000);
  case fault_kind::kill_two:
    return uniform(rng, 1000, 3000);
  case fault_kind::zombie: // past the 2 s failure timeout
    return uniform(rng, 3000, 7000);
  case fault_kind::kill_after_effect:
    return 6000;
  case fault_kind::nats_restart:
    return uniform(rng, 300, 2000);
  case fault_kind::nats_loss:
  case fault_kind::nats_crash:
    return uniform(rng, 5000, 10000);
  case fault_kind::pg_restart:
    return uniform(rng, 0, 1000);
  case fault_kind::pg_outage:
    return 10000;
  case fault_kind::cut_pg:
  case fault_kind::cut_nats:
  case fault_kind::cut_both:
    return uniform(rng, 3000, 10000);
  case fault_kind::clock_jump:
    return uniform(rng, 5000, 15000);
  case fault_kind::slow_nats: // long enough for a backlog to build up
    return uniform(rng, 5000, 15000);
  default:
    return 0;
  }
}

/// Picks free targets for `f`; false when none is free at its time.
bool place(std::mt19937_64& rng, fault& f, busy_until& busy) {
  auto end = f.at_ms + f.hold_ms + 500;
  if (is_node_fault(f.kind)) {
    std::vector<int> free;
    for (int i = 0; i < node_count; ++i)
      if (busy.node[i] <= f.at_ms)
        free.push_back(i);
    auto want = f.kind == fault_kind::kill_two ? 2u : 1u;
    if (free.size() < want)
      return false;
    std::shuffle(free.begin(), free.end(), rng);
    f.a = free[0];
    f.b = want == 2 ? free[1] : -1;
    if (f.kind == fault_kind::slow_nats)
      f.kib_per_s = uniform(rng, 1, 32);
    for (auto i : {f.a, f.b})
      if (i >= 0)
        busy.node[i] = end;
    return true;
  }
  auto nats =
      f.kind == fault_kind::nats_restart || f.kind == fault_kind::nats_loss ||
      f.kind == fault_kind::nats_crash || f.kind == fault_kind::leader_move;
  auto pg = f.kind == fault_kind::pg_restart || f.kind == fault_kind::pg_outage;
  auto& until = nats ? busy.nats : busy.pg;
  if ((nats || pg) && until > f.at_ms)
    return false;
  if (nats || pg)
    until = end;
  if (nats)
    f.a = uniform(rng, 0, nats_count - 1);
  if (f.kind == fault_kind::clock_jump)
    f.jump_s = uniform(rng, 60, 600) * (uniform(rng, 0, 1) ? 1 : -1);
  return true;
}

} // namespace

const char* name_of(fault_kind k) {
  return names[static_cast<std::size_t>(k)];
}

std::string describe(const fault& f) {
  std::string out = name_of(f.kind);
  auto nats = f.kind == fault_kind::nats_restart ||
              f.kind == fault_kind::nats_loss ||
              f.kind == fault_kind::nats_crash;
  if (f.a >= 0)
    out += (nats ? " s" : " n") + std::to_string(f.a + 1);
  if (f.b >= 0)
    out += ",n" + std::to_string(f.b + 1);
  if (f.jump_s)
    out += " by " + std::to_string(f.jump_s) + " s";
  if (f.kib_per_s)
    out += " at " + std::to_string(f.kib_per_s) + " KiB/s";
  out += " for " + std::to_string(f.hold_ms) + " ms at " +
         std::to_string(f.at_ms / 1000.0).substr(0, 5) + " s";
  return out;
}

bool hits_node(const fault& f, int node) {
  if (f.kind == fault_kind::kill_after_effect)
    return true;
  if (f.kind == fault_kind::clock_jump)
    return node == node_count - 1;
  return is_node_fault(f.kind) && (f.a == node || f.b == node);
}

std::vector<fault> draw_plan(std::uint64_t seed, int run_ms, bool clock_jumps,
                             int nats) {
  std::mt19937_64 rng{seed};
  busy_until busy;
  std::vector<fault> plan;
  for (int at = 2000; at < run_ms - 2000; at += uniform(rng, 1000, 4000)) {
    for (int tries = 0; tries < 8; ++tries) {
      fault f;
      // nats_crash is drawn last of all kinds, so that seeds without it
      // keep the schedules they had before it existed.
      f.kind = static_cast<fault_kind>(
          uniform(rng, 0, fault_kinds - (nats >= 2 ? 1 : 2)));
      if ((f.kind == fault_kind::clock_jump && !clock_jumps) ||
          (f.kind == fault_kind::nats_loss && nats < 1))
        continue;
      f.at_ms = at;
      f.hold_ms = hold_for(rng, f.kind);
      if (place(rng, f, busy)) {
        plan.push_back(f);
        break;
      }
    }
  }
  return plan;
}

std::vector<fault> draw_soak_plan(std::uint64_t seed, int run_ms) {
  // The gentle NATS level (restarts, leader moves): docs/reliability.md.
  static constexpr fault_kind kinds[] = {
      fault_kind::kill_one,     fault_kind::kill_two,    fault_kind::zombie,
      fault_kind::nats_restart, fault_kind::leader_move, fault_kind::pg_restart,
      fault_kind::pg_outage,    fault_kind::cut_both};
  std::mt19937_64 rng{seed};
  busy_until busy;
  std::vector<fault> plan;
  for (int at = 30000; at < run_ms - 30000; at += 60000) {
    fault f;
    f.kind = kinds[uniform(rng, 0, std::size(kinds) - 1)];
    f.at_ms = at;
    f.hold_ms = hold_for(rng, f.kind);
    if (place(rng, f, busy))
      plan.push_back(f);
  }
  return plan;
}

} // namespace troupe::chaos
