#pragma once

// The broker can lose a pipeline's consumer (nats-server 2.9.10 was seen to,
// resetting a stream: chaos seed 3, session 18), or an operator delete it.
// The pipeline would stall, and its messages would look unrouted to every
// node. A fetch from a deleted consumer fails once ("Consumer Deleted") and
// then only comes back empty, so an intake's mender looks for its consumers
// after a failed fetch (at most every 2 s) and every 30 s anyway, and makes
// one that the broker says is gone again under the same name: the pull
// subscription fetches by that name, so it needs no new binding.

#include <chrono>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "runtime/nats/nats_client.hpp"

namespace troupe {

class consumer_mender {
public:
  consumer_mender(std::shared_ptr<nats_client> nats, nats_config ncfg,
                  std::string pipeline, int max_in_flight, bool has_high);

  /// After each fetch, on the fetching thread; `failed` when it failed.
  void after_fetch(bool failed);

  /// Makes the consumer (of the high band with `high`) again if the broker
  /// says it is gone; true when it did.
  bool recreate_if_gone(bool high);

private:
  std::shared_ptr<nats_client> nats_;
  nats_config ncfg_;
  std::string pipeline_;
  int max_in_flight_;
  bool has_high_;
  std::chrono::steady_clock::time_point checked_{};
  bool failed_ = false;
};

} // namespace troupe
