#include "runtime/node/consumer_mender.hpp"

#include <spdlog/spdlog.h>

#include "messages/errc.hpp"

namespace troupe {

consumer_mender::consumer_mender(std::shared_ptr<nats_client> nats,
                                 nats_config ncfg, std::string pipeline,
                                 int max_in_flight, bool has_high)
    : nats_(std::move(nats)), ncfg_(std::move(ncfg)),
      pipeline_(std::move(pipeline)), max_in_flight_(max_in_flight),
      has_high_(has_high) {}

void consumer_mender::after_fetch(bool failed) {
  auto now = std::chrono::steady_clock::now();
  failed_ = failed_ || failed;
  auto every = failed_ ? std::chrono::seconds{2} : std::chrono::seconds{30};
  if (now - checked_ < every)
    return;
  checked_ = now;
  failed_ = false;
  recreate_if_gone(false);
  if (has_high_)
    recreate_if_gone(true);
}

bool consumer_mender::recreate_if_gone(bool high) {
  subjects subj{ncfg_.prefix};
  auto durable =
      high ? subj.consumer_high(pipeline_) : subj.consumer(pipeline_);
  auto exists = nats_->consumer_exists(ncfg_.stream, durable);
  if (!exists || *exists)
    return false; // there, or the broker cannot tell: nothing to mend
  auto err = nats_->ensure_consumer(
      ncfg_, pipeline_, consumer_max_ack_pending(max_in_flight_), high);
  if (err) {
    spdlog::warn("intake {}: its consumer {} is gone and could not be made "
                 "again: {}",
                 pipeline_, durable, describe(err));
    return false;
  }
  spdlog::warn("intake {}: its consumer {} was gone (lost by the broker or "
               "deleted by hand); made again",
               pipeline_, durable);
  return true;
}

} // namespace troupe
