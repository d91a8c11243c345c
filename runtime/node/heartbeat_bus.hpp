#pragma once

// Connects a cluster_member to NATS: heartbeats it sends are published on
// `<prefix>.cluster.heartbeat`, and heartbeats received there are forwarded
// to it. The subscription callback only decodes and forwards.

#include <memory>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "runtime/nats/nats_client.hpp"

namespace troupe {

class heartbeat_bus {
public:
  heartbeat_bus(caf::actor_system& sys, std::shared_ptr<nats_client> nats,
                subjects subj);
  ~heartbeat_bus();

  heartbeat_bus(const heartbeat_bus&) = delete;
  heartbeat_bus& operator=(const heartbeat_bus&) = delete;

  /// The actor to pass as cluster_deps::bus.
  caf::actor publisher() const { return publisher_; }

  /// Starts forwarding received heartbeats to `member`.
  caf::error start(caf::actor member);

  /// Stops receiving (idempotent).
  void stop();

  struct impl;

private:
  std::shared_ptr<impl> impl_;
  caf::actor publisher_;
};

} // namespace troupe
