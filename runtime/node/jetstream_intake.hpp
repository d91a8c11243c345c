#pragma once

// Pulls one pipeline's jobs from its durable JetStream consumer and hands
// them to the pipeline supervisor, with credit-based flow control: it never
// holds more unfinished messages than the pipeline's max_in_flight.
//
// A message is acked only when the supervisor reports the job's outcome,
// which the job actor sends after its terminal state committed. While a job
// runs, the intake sends in-progress acks so the broker does not redeliver
// it. Fenced runs (another node owns the job) neither ack nor nak.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "config/config.hpp"
#include "messages/json_codec.hpp"
#include "runtime/nats/nats_client.hpp"

namespace troupe {

class job_presence;
class tenant_rates;

/// Counters of one intake, readable from any thread.
struct intake_counters {
  std::atomic<std::int64_t> fetched{0};
  std::atomic<std::int64_t> acked{0};
  std::atomic<std::int64_t> naked{0};
  std::atomic<std::int64_t> invalid{0};
  std::atomic<std::int64_t> in_flight{0};
};

class jetstream_intake {
public:
  jetstream_intake(caf::actor_system& sys, std::shared_ptr<nats_client> nats,
                   nats_config ncfg, std::string pipeline, int max_in_flight,
                   input_limits limits);
  ~jetstream_intake();

  jetstream_intake(const jetstream_intake&) = delete;
  jetstream_intake& operator=(const jetstream_intake&) = delete;

  /// The actor to pass as supervisor_deps::intake.
  caf::actor actor() const { return actor_; }

  /// Shares a node-wide budget (node.max_in_flight) with the node's other
  /// intakes: none fetches while the node holds `max` jobs. Call before
  /// start().
  void share_node_budget(std::shared_ptr<std::atomic<std::int64_t>> held,
                         std::int64_t max);

  /// Before fresh deliveries may speculate, ask `presence` which of them
  /// exist already (those claim first). Without it, none speculates. Call
  /// before start().
  void set_presence(std::shared_ptr<job_presence> presence);

  /// Counts direct publishes of tenants with a `rate` in `rates` (the
  /// cluster's buckets); a job over its tenant's rate waits in the store.
  /// Call before start().
  void set_tenant_rates(std::shared_ptr<tenant_rates> rates,
                        tenants_config tenants);

  /// Also fetches the pipeline's high-priority band, first (`priorities`).
  /// Call before start().
  void add_high_band();

  /// Binds the consumer and starts fetching into `supervisor`.
  caf::error start(caf::actor supervisor);

  /// Stops fetching new messages (drain gate); in-flight jobs continue.
  void pause();

  /// Fetches again after pause().
  void resume();

  /// True while paused.
  bool paused() const;

  /// Naks every message still held (so other nodes take them at once) and
  /// stops the fetch thread. Idempotent.
  void stop();

  const intake_counters& counters() const { return *counters_; }

  /// The counters, shared with a reader that may outlive this intake.
  std::shared_ptr<const intake_counters> shared_counters() const {
    return counters_;
  }

  struct shared_state;

private:
  void fetch_loop();

  std::shared_ptr<shared_state> state_;
  std::shared_ptr<intake_counters> counters_;
  caf::actor actor_;
  std::thread thread_;
};

} // namespace troupe
