#include "runtime/node/admin_bridge.hpp"
#include "messages/errc.hpp"
#include "messages/json_guard.hpp"

#include <atomic>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "runtime/common/blocking_pool.hpp"
#include "runtime/nats/nats_subscription.hpp"

namespace troupe {

struct admin_bridge::impl {
  std::shared_ptr<nats_client> nats;
  std::string prefix;
  std::string node_id;
  std::shared_ptr<blocking_pool> workers;
  /// `any` verbs fan out to every node, this one included: they get their
  /// own threads so they never wait on a request that needs the same pool.
  std::shared_ptr<blocking_pool> any_workers;
  std::string inbox_prefix;
  std::map<std::string, admin_verb> read;
  std::map<std::string, admin_verb> control;
  std::map<std::string, std::set<std::string>> control_fields;
  /// Requests dropped for their reply subject (metrics, logs).
  std::atomic<std::int64_t> refused{0};
  std::vector<nats_subscription> subs;
};

namespace {

using json = nlohmann::json;

/// Admin requests are small flat objects; anything deeper is not one.
constexpr int admin_request_depth = 16;

json error_reply(const std::string& node, const std::string& code,
                 const std::string& message) {
  return json{{"ok", false},
              {"node", node},
              {"error", {{"code", code}, {"message", message}}}};
}

/// Why `req` is not a well-formed body for a control verb taking `fields`
/// (empty if it is).
std::string unexpected_field(const json& req,
                             const std::set<std::string>& fields) {
  if (req.is_null())
    return {};
  if (!req.is_object())
    return std::string{"request body must be a JSON object, got "} +
           req.type_name();
  for (const auto& [key, value] : req.items())
    if (!fields.count(key))
      return "unknown field '" + key.substr(0, 64) + "' in request body";
  return {};
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

void handle(const std::shared_ptr<admin_bridge::impl>& im,
            const std::string& subject, const std::string& reply,
            const std::string& body) {
  // <prefix>.admin.<target>.<class>.<verb>
  auto base = im->prefix + ".admin.";
  json out;
  auto rest = subject.substr(base.size());
  auto d1 = rest.find('.');
  auto d2 = d1 == std::string::npos ? d1 : rest.find('.', d1 + 1);
  if (d2 == std::string::npos) {
    out = error_reply(im->node_id, "unknown_verb",
                      "expected " + base + "<node|all>.<read|control>.<verb>");
  } else {
    auto cls = rest.substr(d1 + 1, d2 - d1 - 1);
    auto verb = rest.substr(d2 + 1);
    auto& table = cls == "control" ? im->control : im->read;
    auto& other = cls == "control" ? im->read : im->control;
    auto i = table.find(verb);
    if (cls != "read" && cls != "control") {
      out = error_reply(im->node_id, "unknown_verb",
                        "class must be read or control, got '" + cls + "'");
    } else if (i == table.end()) {
      std::string known;
      for (auto& kv : table)
        known += (known.empty() ? "" : ", ") + kv.first;
      out = error_reply(im->node_id, "unknown_verb",
                        other.count(verb)
                            ? "'" + verb + "' is a " +
                                  (cls == "read" ? std::string{"control"}
                                                 : std::string{"read"}) +
                                  " verb"
                            : "unknown " + cls + " verb '" + verb +
                                  "' (known: " + known + ")");
    } else {
      auto req = body.empty() ? caf::expected<json>{json{}}
                              : parse_untrusted_json(body, admin_request_depth,
                                                     "request body");
      std::string bad;
      if (!req) {
        out = error_reply(im->node_id, to_string(code_of(req.error())),
                          message_of(req.error()));
      } else if (cls == "control" &&
                 !(bad = unexpected_field(*req, im->control_fields[verb]))
                      .empty()) {
        out = error_reply(im->node_id, "invalid_request", bad);
      } else {
        try {
          out = json{
              {"ok", true}, {"node", im->node_id}, {"result", i->second(*req)}};
        } catch (const admin_failure& e) {
          out = error_reply(im->node_id, e.code, e.what());
        } catch (const std::exception& e) {
          out = error_reply(im->node_id, "failed", e.what());
        }
      }
    }
  }
  if (reply.empty())
    return;
  auto text = out.dump();
  im->nats->publish(reply, text);
}

void on_request(const std::weak_ptr<admin_bridge::impl>& weak,
                const nats_msg& msg) {
  std::string subject{msg.subject()};
  std::string reply{msg.reply()};
  std::string body{msg.data()};
  if (auto im = weak.lock()) {
    if (!acceptable_reply(*im, subject, reply)) {
      if (im->refused++ % 1000 == 0)
        spdlog::warn("admin: dropped a request on {} whose reply subject '{}' "
                     "is not an inbox under '{}.' ({} so far)",
                     subject, reply.substr(0, 128), im->inbox_prefix,
                     im->refused.load());
      return;
    }
    auto any = im->prefix + ".admin.any.";
    auto& pool = subject.compare(0, any.size(), any) == 0 ? im->any_workers
                                                          : im->workers;
    auto posted = pool->post(
        [im, subject, reply, body] { handle(im, subject, reply, body); });
    if (!posted && !reply.empty()) {
      // Shed load: a flood of admin requests must not grow without bound.
      auto text = error_reply(im->node_id, "unavailable",
                              "node is busy or stopping; retry")
                      .dump();
      im->nats->publish(reply, text);
    }
  }
}

} // namespace

admin_bridge::admin_bridge(std::shared_ptr<nats_client> nats,
                           std::string prefix, std::string node_id,
                           std::shared_ptr<blocking_pool> workers,
                           std::string inbox_prefix)
    : impl_(std::make_shared<impl>()) {
  impl_->inbox_prefix = std::move(inbox_prefix);
  impl_->nats = std::move(nats);
  impl_->prefix = std::move(prefix);
  impl_->node_id = std::move(node_id);
  impl_->workers = std::move(workers);
  impl_->any_workers = std::make_shared<blocking_pool>(2, 256);
}

admin_bridge::~admin_bridge() {
  stop();
}

void admin_bridge::add_read(const std::string& name, admin_verb fn) {
  impl_->read[name] = std::move(fn);
}

void admin_bridge::add_control(const std::string& name,
                               std::set<std::string> fields, admin_verb fn) {
  impl_->control[name] = std::move(fn);
  impl_->control_fields[name] = std::move(fields);
}

caf::error admin_bridge::start() {
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
  impl_->any_workers->stop();
}

} // namespace troupe
