#pragma once

// An operator's remedy for what nats-server 2.9.10 was seen to leave behind
// after a replica reset: messages of jobs that have ended, which no
// consumer hands out and no ack removes, even after the servers restarted
// and the sweeper made their consumer again (chaos seed 182, session 22).
// Nothing is lost while they stay (PostgreSQL says the job ended; a node
// handed one would ack it as stale), but the stream never empties and its
// counts lie. `tidy` deletes exactly those: each stored message on the
// jobs subjects whose job PostgreSQL holds ended, in the message's own
// pipeline, published longer ago than the duplicate window + ack_wait + 5 s
// (no ack of it can still be on its way). Run by an operator, never by
// itself: the sweeper stopped deleting in session 20 because a deletion
// preceded a replica reset, so tidy refuses while the stream's replicas are
// out of step, checks again before each deletion, and deletes a sequence
// only after reading it again and finding the same job there (a replica
// that lost messages numbers new ones from its own end).

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "config/config.hpp"
#include "runtime/nats/nats_client.hpp"
#include "runtime/nats/stream_messages.hpp"
#include "runtime/pg/stranded_store.hpp"

namespace troupe {

struct tidy_request {
  bool dry_run = false;
  /// Only messages published longer ago than this; negative: the default
  /// (duplicate window + ack_wait + 5 s), which no ack still on its way
  /// outlives. Lower only while no node can be acking (all stopped, or
  /// the pipelines paused).
  std::chrono::milliseconds older_than{-1};
  /// At most this many deletions (the walk stops there).
  std::size_t limit = 1000;
};

struct tidy_report {
  bool dry_run = false;
  std::int64_t older_than_ms = 0;
  std::uint64_t examined = 0; ///< messages read on the jobs subjects
  std::uint64_t ended = 0;    ///< of them: jobs ended, old enough
  std::uint64_t deleted = 0;
  /// The first ended ones, "job_id@seq".
  std::vector<std::string> messages;
  /// False when the limit stopped the walk early.
  bool complete = true;
  /// Why nothing was done ("" when it ran): the replicas out of step, or
  /// another node sweeping.
  std::string refused;
};

class stream_tidy {
public:
  stream_tidy(std::shared_ptr<nats_client> nats, nats_config ncfg,
              std::string pg_url, input_limits limits);

  /// Walks the stream; errc::unavailable if NATS or PostgreSQL cannot be
  /// read (what was deleted before stays deleted, and is logged).
  caf::expected<tidy_report> run(const tidy_request& req);

private:
  std::string pipeline_of(const std::string& subject) const;
  caf::error walk(const tidy_request& req, tidy_report& rep);
  caf::error walk_subject(const std::string& subject, std::uint64_t last,
                          const tidy_request& req, tidy_report& rep);
  caf::error visit(const stored_message& m, const tidy_request& req,
                   tidy_report& rep);
  caf::error remove(const stored_message& m, const std::string& job_id,
                    tidy_report& rep);

  std::shared_ptr<nats_client> nats_;
  nats_config ncfg_;
  input_limits limits_;
  std::mutex mtx_; ///< one tidy at a time on this node (one connection)
  stranded_store store_;
};

} // namespace troupe
