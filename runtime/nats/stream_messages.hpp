#pragma once

// Reading a JetStream stream's stored messages and a consumer's position
// directly, for the sweeper that finds messages the broker stopped
// tracking (runtime/node/stranded_sweeper.hpp).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/expected.hpp>

#include "messages/delivery.hpp"
#include "runtime/nats/nats_client.hpp"

namespace troupe {

/// A message as the stream stores it.
struct stored_message {
  std::uint64_t seq = 0;
  std::int64_t published_ms = 0;
  std::string subject;
  std::string data;
  std::vector<std::pair<std::string, std::string>> headers;
  /// What decides its job, read as an intake reads a delivery.
  delivery_fields fields;

  /// The first value of header `name`, "" if absent.
  std::string header(const std::string& name) const;
};

/// Where a consumer stands: every message up to `ack_floor` (a stream
/// sequence) is acknowledged; `delivered` is the last one it handed out.
struct consumer_position {
  std::uint64_t ack_floor = 0;
  std::uint64_t delivered = 0;
  /// Messages it has still to hand out, and handed out but not acked.
  std::uint64_t pending = 0;
  std::uint64_t ack_pending = 0;
  /// When the broker made it (its clock, ms since the epoch).
  std::int64_t created_ms = 0;
};

caf::expected<consumer_position>
consumer_position_of(nats_client& nats, const std::string& stream,
                     const std::string& durable);

/// The first stored message on `subject` at or after `from_seq`; nullopt
/// when there is none.
caf::expected<std::optional<stored_message>>
next_stored(nats_client& nats, const std::string& stream,
            std::uint64_t from_seq, const std::string& subject);

/// Whether `m`, found by next_stored() on `subject`, is on that subject (or
/// a placeholder for one deleted meanwhile). After a replica reset,
/// nats-server 2.9.10 was seen to answer a lookup on one subject with
/// another's message (chaos seed 115, session 22).
bool answers_lookup(const stored_message& m, const std::string& subject);

/// The stored message at `seq`; nullopt when the stream has none there
/// (deleted, acknowledged, or lost).
caf::expected<std::optional<stored_message>>
stored_at(nats_client& nats, const std::string& stream, std::uint64_t seq);

/// The stream's last sequence.
caf::expected<std::uint64_t> last_sequence(nats_client& nats,
                                           const std::string& stream);

/// How many messages the stream holds per subject under `filter`.
caf::expected<std::map<std::string, std::uint64_t>>
stored_per_subject(nats_client& nats, const std::string& stream,
                   const std::string& filter);

/// Asks the broker to move a consumer's leadership to another replica (its
/// state is loaded afresh there).
caf::error step_down_consumer(nats_client& nats, const std::string& stream,
                              const std::string& durable);

/// Deletes a consumer and adds it again under the same name and config. In
/// a work-queue stream it then hands out every message the stream still
/// holds on its subject, from the first: what nats-server 2.9.10 kept back
/// after a replica reset (chaos seeds 4, 16, 19 of session 19: "0 pending"
/// and a few "unacked" never delivered again, through leader moves). The
/// messages its nodes hold are delivered again; PostgreSQL decides them.
caf::error remake_consumer(nats_client& nats, const std::string& stream,
                           const std::string& durable);

/// Why the stream's replicas are not in step with its leader ("no
/// leader", "s2 is 40 entries behind", ...), or "" when they are (or the
/// stream has one replica). nats-server 2.9.10 resets a replica told to
/// delete a sequence past its own end ("stream store EOF"), and chaos runs
/// saw two of three do so at once, after which the stream's consumers lost
/// their quorum. The sweeper reports it; it deletes nothing since session
/// 20 (deletions waited for replicas in step, and still preceded resets).
std::string out_of_step(const jsClusterInfo* cluster);
caf::expected<std::string> replicas_out_of_step(nats_client& nats,
                                                const std::string& stream);

/// Deletes one stored message.
caf::error delete_stored(nats_client& nats, const std::string& stream,
                         std::uint64_t seq);

} // namespace troupe
