#include "runtime/heartbeat_bus.hpp"

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "messages/heartbeat.hpp"

namespace troupe {

struct heartbeat_bus::impl {
  std::shared_ptr<nats_client> nats;
  subjects subj;
  caf::actor member;
  natsSubscription* sub = nullptr;
};

namespace {

void on_heartbeat(natsConnection*, natsSubscription*, natsMsg* msg,
                  void* closure) {
  auto* im = static_cast<heartbeat_bus::impl*>(closure);
  auto hb = decode_heartbeat(
      std::string_view{natsMsg_GetData(msg),
                       static_cast<std::size_t>(natsMsg_GetDataLength(msg))});
  natsMsg_Destroy(msg);
  if (hb && im->member)
    caf::anon_send(im->member, std::move(*hb));
}

} // namespace

heartbeat_bus::heartbeat_bus(caf::actor_system& sys,
                             std::shared_ptr<nats_client> nats, subjects subj)
    : impl_(std::make_shared<impl>()) {
  impl_->nats = nats;
  impl_->subj = subj;
  publisher_ =
      sys.spawn([nats, subj](caf::event_based_actor* self) -> caf::behavior {
        return {
            [nats, subj](const heartbeat& hb) {
              nats->publish(subj.heartbeat(), encode_heartbeat(hb));
            },
            [self](leave_atom) { self->quit(); },
        };
      });
}

heartbeat_bus::~heartbeat_bus() {
  stop();
  // A normal message, not an exit (which CAF delivers first): heartbeats
  // already queued, such as the goodbye, still go out.
  caf::anon_send(publisher_, leave_atom::value);
}

caf::error heartbeat_bus::start(caf::actor member) {
  impl_->member = std::move(member);
  auto subject = impl_->subj.heartbeat();
  auto s = natsConnection_Subscribe(&impl_->sub, impl_->nats->conn(),
                                    subject.c_str(), on_heartbeat, impl_.get());
  if (s != NATS_OK)
    return nats_error(s, "subscribe to " + subject);
  auto* keep = new std::shared_ptr<impl>(impl_);
  natsSubscription_SetOnCompleteCB(
      impl_->sub,
      [](void* p) { delete static_cast<std::shared_ptr<impl>*>(p); }, keep);
  return caf::none;
}

void heartbeat_bus::stop() {
  if (impl_->sub) {
    natsSubscription_Unsubscribe(impl_->sub);
    natsSubscription_Destroy(impl_->sub);
    impl_->sub = nullptr;
  }
}

} // namespace troupe
