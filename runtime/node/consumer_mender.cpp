#include "runtime/node/consumer_mender.hpp"

#include <spdlog/spdlog.h>

#include "messages/errc.hpp"
#include "runtime/nats/delivery.hpp" // now_ms
#include "runtime/nats/stream_messages.hpp"

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

std::string consumer_of_ack(const std::string& reply) {
  static const std::string prefix = "$JS.ACK.";
  if (reply.compare(0, prefix.size(), prefix) != 0)
    return {};
  auto from = reply.find('.', prefix.size()); // after the stream
  if (from == std::string::npos)
    return {};
  auto to = reply.find('.', from + 1);
  return to == std::string::npos ? std::string{}
                                 : reply.substr(from + 1, to - from - 1);
}

bool misdelivery_streak::note(std::chrono::steady_clock::time_point now) {
  if (last_ == std::chrono::steady_clock::time_point{} || now - last_ > window_)
    first_ = now;
  last_ = now;
  if (now - first_ < window_)
    return false;
  last_ = {};
  return true;
}

void consumer_mender::misdelivered(const std::string& durable) {
  constexpr std::chrono::seconds window{30};
  constexpr std::int64_t min_age_ms = 60000;
  auto streak = streaks_.emplace(durable, misdelivery_streak{window}).first;
  if (!streak->second.note(std::chrono::steady_clock::now()))
    return;
  auto pos = consumer_position_of(*nats_, ncfg_.stream, durable);
  if (!pos || now_ms() - pos->created_ms < min_age_ms)
    return; // cannot tell, or made again lately: its new state is judged
  if (auto err = remake_consumer(*nats_, ncfg_.stream, durable)) {
    spdlog::warn("intake {}: consumer {} keeps delivering other subjects' "
                 "messages; making it again failed: {}",
                 pipeline_, durable, describe(err));
    return;
  }
  spdlog::warn("intake {}: consumer {} delivered other subjects' messages "
               "for {} s; made again",
               pipeline_, durable, window.count());
}

} // namespace troupe
