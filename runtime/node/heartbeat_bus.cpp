#include "runtime/node/heartbeat_bus.hpp"

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "messages/heartbeat.hpp"
#include "runtime/nats/nats_subscription.hpp"

namespace troupe {

struct heartbeat_bus::impl {
  std::shared_ptr<nats_client> nats;
  subjects subj;
  caf::actor member;
  nats_subscription sub;
};

namespace {

void on_heartbeat(const caf::actor& member, const nats_msg& msg) {
  auto hb = decode_heartbeat(msg.data());
  if (hb && member)
    caf::anon_send(member, std::move(*hb));
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
  impl_->member = member;
  auto sub = nats_subscription::open(
      *impl_->nats, impl_->subj.heartbeat(),
      [member](nats_msg msg) { on_heartbeat(member, msg); });
  if (!sub)
    return sub.error();
  impl_->sub = std::move(*sub);
  return caf::none;
}

void heartbeat_bus::stop() {
  impl_->sub.close();
}

} // namespace troupe
