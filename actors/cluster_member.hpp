#pragma once

// Membership over heartbeats. Every node runs one cluster_member: it
// publishes its own heartbeat every interval, keeps a view of every node it
// hears from, and marks a node `down` when it has been silent for the
// failure timeout (and `up` again when it returns).
//
// Accepts:
//   heartbeat                       a heartbeat received from the bus
//   (tick_atom)                     self: publish ours, check silences
//   (get_atom)   -> std::vector<member>   the membership view, sorted by id
//   (state_atom, std::string)       our state: "up" or "draining"
//   (leave_atom)                    publish a final "down" and quit
// Sends:
//   heartbeat to `bus` (which publishes it on NATS)
//   (member_atom, member) to `listener` when a member changes state
//   (conflict_atom, heartbeat) to `listener` when another process announces
//   our node id

#include <cstdint>
#include <functional>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "config/config.hpp"
#include "messages/heartbeat.hpp"

namespace troupe {

struct cluster_deps {
  /// Receives our heartbeats to publish.
  caf::actor bus;
  /// Receives membership changes and id conflicts; may be null.
  caf::actor listener;
  /// Our identity; in_flight and capacity are refreshed from `load`.
  heartbeat self;
  duration_ms interval{1000};
  duration_ms failure_timeout{5000};
  /// Wall clock for sent_at_ms.
  std::function<std::int64_t()> now_ms;
  /// Current in-flight jobs of this node (called on the actor's thread;
  /// must be cheap and thread-safe, e.g. an atomic load).
  std::function<std::int64_t()> load;
  /// Current health ("healthy" / "degraded"); may be empty.
  std::function<std::string()> health;
};

/// Spawns a cluster member; it publishes its first heartbeat at once.
caf::actor spawn_cluster_member(caf::actor_system& sys, cluster_deps deps);

} // namespace troupe
