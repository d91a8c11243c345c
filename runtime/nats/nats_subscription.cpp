#include "runtime/nats/nats_subscription.hpp"

#include <utility>

#include "messages/errc.hpp"
#include "runtime/nats/nats_client.hpp"

namespace troupe {

namespace {

std::string_view view(const char* p, int n) {
  return p ? std::string_view{p, static_cast<std::size_t>(n)}
           : std::string_view{};
}

void deliver(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  (*static_cast<nats_subscription::handler*>(closure))(nats_msg{msg});
}

void release(void* closure) {
  delete static_cast<nats_subscription::handler*>(closure);
}

} // namespace

std::string_view nats_msg::subject() const {
  auto* s = natsMsg_GetSubject(m_.get());
  return s ? std::string_view{s} : std::string_view{};
}

std::string_view nats_msg::reply() const {
  auto* r = natsMsg_GetReply(m_.get());
  return r ? std::string_view{r} : std::string_view{};
}

std::string_view nats_msg::data() const {
  return view(natsMsg_GetData(m_.get()), natsMsg_GetDataLength(m_.get()));
}

nats_subscription::nats_subscription(nats_subscription&& other) noexcept
    : sub_(std::exchange(other.sub_, nullptr)) {}

nats_subscription&
nats_subscription::operator=(nats_subscription&& other) noexcept {
  if (this != &other) {
    close();
    sub_ = std::exchange(other.sub_, nullptr);
  }
  return *this;
}

nats_subscription::~nats_subscription() {
  close();
}

caf::expected<nats_subscription>
nats_subscription::open(nats_client& nats, const std::string& subject,
                        handler fn, const subscribe_options& opts) {
  auto* closure = new handler(std::move(fn));
  natsSubscription* sub = nullptr;
  auto s =
      opts.queue.empty()
          ? natsConnection_Subscribe(&sub, nats.conn(), subject.c_str(),
                                     deliver, closure)
          : natsConnection_QueueSubscribe(&sub, nats.conn(), subject.c_str(),
                                          opts.queue.c_str(), deliver, closure);
  if (s != NATS_OK) {
    delete closure;
    return nats_error(s, "subscribe to " + subject);
  }
  natsSubscription_SetOnCompleteCB(sub, release, closure);
  if (opts.unbounded_pending)
    natsSubscription_SetPendingLimits(sub, 10000000, 1024 * 1024 * 1024);
  nats_subscription out;
  out.sub_ = sub;
  return out;
}

void nats_subscription::close(int drain_ms) {
  if (!sub_)
    return;
  if (drain_ms > 0 && natsSubscription_Drain(sub_) == NATS_OK)
    natsSubscription_WaitForDrainCompletion(sub_, drain_ms);
  else
    natsSubscription_Unsubscribe(sub_);
  natsSubscription_Destroy(sub_);
  sub_ = nullptr;
}

} // namespace troupe
