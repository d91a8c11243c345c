#pragma once

// Cluster membership data: the heartbeat every node publishes on
// `<prefix>.cluster.heartbeat`, and a member as seen by another node.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/expected.hpp>
#include <caf/meta/type_name.hpp>

namespace troupe {

/// What a node announces about itself, every heartbeat interval.
struct heartbeat {
  std::string node_id;
  std::string host;
  std::int64_t pid = 0;
  std::string version;
  std::vector<std::string> pipelines;
  std::int64_t in_flight = 0;
  std::int64_t capacity = 0;
  /// "up", "draining" or "down" (a node leaving says "down" once).
  std::string state = "up";
  /// "healthy", or "degraded" while NATS or PostgreSQL is unreachable.
  std::string health = "healthy";
  std::int64_t started_at_ms = 0;
  std::int64_t sent_at_ms = 0;
  /// Incremented per heartbeat; lets receivers spot restarts and reordering.
  std::int64_t seq = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, heartbeat& x) {
  return f(caf::meta::type_name("heartbeat"), x.node_id, x.host, x.pid,
           x.version, x.pipelines, x.in_flight, x.capacity, x.state, x.health,
           x.started_at_ms, x.sent_at_ms, x.seq);
}

/// A node as seen from here.
struct member {
  heartbeat last;
  /// "up", "draining" or "down" (down: silent for the failure timeout, or
  /// it said goodbye).
  std::string state;
  /// Milliseconds since its last heartbeat arrived (local clock).
  std::int64_t silent_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, member& x) {
  return f(caf::meta::type_name("member"), x.last, x.state, x.silent_ms);
}

/// JSON of a heartbeat (the wire format of the heartbeat subject).
std::string encode_heartbeat(const heartbeat& hb);

/// Decodes a heartbeat; errc::invalid_payload when malformed.
caf::expected<heartbeat> decode_heartbeat(std::string_view text);

} // namespace troupe
