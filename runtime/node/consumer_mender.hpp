#pragma once

// The broker can lose a pipeline's consumer (nats-server 2.9.10 was seen to,
// resetting a stream: chaos seed 3, session 18), or an operator delete it.
// The pipeline would stall, and its messages would look unrouted to every
// node. A fetch from a deleted consumer fails once ("Consumer Deleted") and
// then only comes back empty, so an intake's mender looks for its consumers
// after a failed fetch (at most every 2 s) and every 30 s anyway, and makes
// one that the broker says is gone again under the same name: the pull
// subscription fetches by that name, so it needs no new binding. It also
// makes again a consumer that keeps delivering other subjects' messages.

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "runtime/nats/nats_client.hpp"

namespace troupe {

/// Misdeliveries that last: true once they have come, with no gap longer
/// than `window`, for at least `window`. One message of another subject is
/// the broker's slip; a stream of them for that long is a consumer whose
/// filter state the broker broke (nats-server 2.9.10 after a replica
/// reset: chaos seed 36 of session 20, consumers of four pipelines handing
/// each other's messages back and forth for minutes, never the ones they
/// filter on).
class misdelivery_streak {
public:
  explicit misdelivery_streak(std::chrono::milliseconds window)
      : window_(window) {}

  /// Notes one misdelivery at `now`; true when the streak has lasted the
  /// window (then it starts over).
  bool note(std::chrono::steady_clock::time_point now);

private:
  std::chrono::milliseconds window_;
  std::chrono::steady_clock::time_point first_{};
  std::chrono::steady_clock::time_point last_{};
};

/// The consumer named by a JetStream ack subject
/// ("$JS.ACK.<stream>.<consumer>.…"), "" if it is not one.
std::string consumer_of_ack(const std::string& reply);

class consumer_mender {
public:
  consumer_mender(std::shared_ptr<nats_client> nats, nats_config ncfg,
                  std::string pipeline, int max_in_flight, bool has_high);

  /// After each fetch, on the fetching thread; `failed` when it failed.
  void after_fetch(bool failed);

  /// Makes the consumer (of the high band with `high`) again if the broker
  /// says it is gone; true when it did.
  bool recreate_if_gone(bool high);

  /// A message of another subject came through consumer `durable` (from
  /// its ack reply subject). Once such misdeliveries have lasted 30 s, the
  /// consumer is made again (remake_consumer), unless it was made less
  /// than a minute ago (by any node).
  void misdelivered(const std::string& durable);

private:
  std::shared_ptr<nats_client> nats_;
  nats_config ncfg_;
  std::string pipeline_;
  int max_in_flight_;
  bool has_high_;
  std::chrono::steady_clock::time_point checked_{};
  std::map<std::string, misdelivery_streak> streaks_;
  bool failed_ = false;
};

} // namespace troupe
