#include "runtime/node/admin_bridge.hpp"

#include <atomic>
#include <chrono>
#include <vector>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "messages/admin_json.hpp"
#include "messages/errc.hpp"
#include "runtime/nats/nats_subscription.hpp"

namespace troupe {

namespace {

using namespace std::chrono_literals;

/// A lost reply must not hold a request forever; verbs bound their own
/// waits, and `replay --all` over many jobs may legitimately take minutes.
constexpr auto call_deadline = 5min;
/// Requests taken but not answered yet, beyond which the bridge sheds load.
constexpr int max_in_flight = 512;
/// How long stop() waits for the replies of requests already taken.
constexpr auto stop_grace = 5s;

} // namespace

struct admin_bridge::impl {
  std::shared_ptr<nats_client> nats;
  std::string prefix;
  std::string node_id;
  caf::actor_system* sys = nullptr;
  admin_actor admin;
  std::string inbox_prefix;
  caf::actor relay;
  /// Requests dropped for their reply subject (logs).
  std::atomic<std::int64_t> refused{0};
  std::vector<nats_subscription> subs;

  void publish_error(const std::string& reply, const std::string& code,
                     const std::string& message) const {
    if (!reply.empty())
      nats->publish(reply, admin_error(node_id, code, message).dump());
  }
};

namespace {

struct relay_state {
  int in_flight = 0;
  bool leaving = false;
  static inline const char* name = "admin relay";
};

void settle(caf::stateful_actor<relay_state>* self) {
  if (--self->state.in_flight == 0 && self->state.leaving)
    self->quit();
}

/// Hands each request to the admin actor and publishes its answer. Runs
/// detached (its own thread): publishing is I/O.
caf::behavior relay(caf::stateful_actor<relay_state>* self,
                    std::shared_ptr<admin_bridge::impl> im) {
  return {
      [self, im](admin_call& call, std::string& reply) {
        if (self->state.in_flight >= max_in_flight) {
          im->publish_error(reply, "unavailable",
                            "node is busy or stopping; retry");
          return;
        }
        ++self->state.in_flight;
        self->request(im->admin, call_deadline, std::move(call))
            .then(
                [self, im, reply](std::string& text) {
                  if (!reply.empty())
                    im->nats->publish(reply, text);
                  settle(self);
                },
                [self, im, reply](caf::error& err) {
                  im->publish_error(reply, "unavailable", describe(err));
                  settle(self);
                });
      },
      [self](leave_atom) {
        self->state.leaving = true;
        if (self->state.in_flight == 0)
          self->quit();
      },
  };
}

/// Whether a request may be acted on at all: it names an inbox to reply
/// to, or (read verbs only) no reply at all.
bool acceptable_reply(const admin_bridge::impl& im, const std::string& subject,
                      const std::string& reply) {
  if (!reply.empty())
    return is_inbox_subject(reply, im.inbox_prefix);
  // A control verb without a reply: nobody asked (a JetStream publish ack
  // sent here by a publisher's reply-to looks exactly like that).
  return subject.find(".control.") == std::string::npos;
}

/// `<prefix>.admin.<target>.<class>.<verb>` as a call; false if the
/// subject has fewer parts.
bool to_call(const admin_bridge::impl& im, const std::string& subject,
             admin_call& call) {
  auto rest = subject.substr(im.prefix.size() + 7); // ".admin."
  auto d1 = rest.find('.');
  auto d2 = d1 == std::string::npos ? d1 : rest.find('.', d1 + 1);
  if (d2 == std::string::npos)
    return false;
  call.target = rest.substr(0, d1);
  call.cls = rest.substr(d1 + 1, d2 - d1 - 1);
  call.verb = rest.substr(d2 + 1);
  return true;
}

void on_request(const std::weak_ptr<admin_bridge::impl>& weak,
                const nats_msg& msg) {
  auto im = weak.lock();
  if (!im)
    return;
  std::string subject{msg.subject()};
  std::string reply{msg.reply()};
  if (!acceptable_reply(*im, subject, reply)) {
    if (im->refused++ % 1000 == 0)
      spdlog::warn("admin: dropped a request on {} whose reply subject '{}' "
                   "is not an inbox under '{}.' ({} so far)",
                   subject, reply.substr(0, 128), im->inbox_prefix,
                   im->refused.load());
    return;
  }
  admin_call call;
  if (!to_call(*im, subject, call)) {
    im->publish_error(reply, "unknown_verb",
                      "expected " + im->prefix +
                          ".admin.<node|all|any>.<read|control>.<verb>");
    return;
  }
  call.body = std::string{msg.data()};
  caf::anon_send(im->relay, std::move(call), std::move(reply));
}

} // namespace

admin_bridge::admin_bridge(std::shared_ptr<nats_client> nats,
                           std::string prefix, std::string node_id,
                           caf::actor_system& sys, admin_actor admin,
                           std::string inbox_prefix)
    : impl_(std::make_shared<impl>()) {
  impl_->nats = std::move(nats);
  impl_->prefix = std::move(prefix);
  impl_->node_id = std::move(node_id);
  impl_->sys = &sys;
  impl_->admin = std::move(admin);
  impl_->inbox_prefix = std::move(inbox_prefix);
}

admin_bridge::~admin_bridge() {
  stop();
}

caf::error admin_bridge::start() {
  impl_->relay = impl_->sys->spawn<caf::detached>(relay, impl_);
  for (auto target : {impl_->node_id, std::string{"all"}, std::string{"any"}}) {
    auto subject = impl_->prefix + ".admin." + target + ".>";
    subscribe_options so;
    if (target == "any")
      so.queue = "troupe_admin";
    auto sub = nats_subscription::open(
        *impl_->nats, subject,
        [weak = std::weak_ptr<impl>(impl_)](nats_msg m) {
          on_request(weak, m);
        },
        so);
    if (!sub)
      return sub.error();
    impl_->subs.push_back(std::move(*sub));
  }
  return caf::none;
}

void admin_bridge::stop() {
  impl_->subs.clear(); // unsubscribes
  if (!impl_->relay)
    return;
  caf::scoped_actor self{*impl_->sys};
  self->monitor(impl_->relay);
  self->send(impl_->relay, leave_atom::value);
  self->receive([](const caf::down_msg&) {},
                caf::after(stop_grace) >>
                    [this] {
                      caf::anon_send_exit(impl_->relay,
                                          caf::exit_reason::user_shutdown);
                    });
  impl_->relay = nullptr;
}

} // namespace troupe
