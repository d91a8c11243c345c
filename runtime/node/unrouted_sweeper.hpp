#pragma once

// Messages published straight to `<prefix>.jobs.<pipeline>` for a pipeline
// that no node has ever run have no consumer, and would wait in the stream
// forever. Every node sweeps such subjects periodically: each message becomes
// a job that is dead-lettered at once with code `unknown_pipeline`, then it
// is acked. A pipeline "exists" when its durable consumer exists (any node
// running it creates it), so this is a cluster-wide decision, not a node's.
//
// Taking a live pipeline's jobs for unrouted dead-letters them, so the
// sweeper is careful: a consumer counts as missing only when the broker
// says so (no answer is not "absent"), a subject is swept only when it was
// unrouted in two sweeps in a row (a consumer is missing for a moment while
// a node makes it, or the broker resets a stream), and never the subject of
// a pipeline this node runs itself (its intake makes its consumer again).

#include <memory>
#include <set>
#include <thread>

#include <caf/actor_system.hpp>

#include "actors/job_actor.hpp"
#include "config/config.hpp"
#include "messages/json_codec.hpp"
#include "runtime/nats/nats_client.hpp"

namespace troupe {

class unrouted_sweeper {
public:
  /// `own`: the subject tokens this node takes (`<pipeline>`, and
  /// `<pipeline>.high` for a pipeline with priorities).
  unrouted_sweeper(caf::actor_system& sys, std::shared_ptr<nats_client> nats,
                   nats_config ncfg, std::shared_ptr<const job_deps> deps,
                   input_limits limits, std::set<std::string> own);
  ~unrouted_sweeper();

  unrouted_sweeper(const unrouted_sweeper&) = delete;
  unrouted_sweeper& operator=(const unrouted_sweeper&) = delete;

  /// Starts sweeping every `nats.unrouted_sweep` (no-op when it is 0).
  void start();

  /// Stops and joins (idempotent).
  void stop();

  /// Sweeps once in the calling thread; returns the number of messages
  /// dead-lettered.
  int sweep_once();

  struct impl;

private:
  std::shared_ptr<impl> impl_;
  std::thread thread_;
};

} // namespace troupe
