#include "runtime/node/status_api.hpp"

#include <array>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "messages/errc.hpp"
#include "messages/json_guard.hpp"
#include "runtime/common/blocking_pool.hpp"
#include "runtime/nats/nats_subscription.hpp"
#include "runtime/node/batch_api.hpp"
#include "runtime/node/callback_api.hpp"
#include "runtime/node/job_waiters.hpp"
#include "runtime/pg/callback_store.hpp"

namespace troupe {

namespace {

using json = nlohmann::json;

/// Longest job id a request may name (keys are at most 256 bytes; ids of
/// undecodable input are longer but still short).
constexpr std::size_t max_job_id = 512;

/// Waiters one node holds at most; beyond, a wait is refused `unavailable`.
constexpr std::size_t max_waiters = 10000;

caf::error bad_request(std::string message) {
  return make_error(errc::invalid_payload, std::move(message));
}

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() > tail.size() && s.substr(s.size() - tail.size()) == tail;
}

bool terminal_state(const std::string& s) {
  return s == "succeeded" || s == "dead_lettered" || s == "cancelled";
}

} // namespace

std::string encode_api_error(std::string_view code, std::string_view message) {
  return json{{"ok", false}, {"error", {{"code", code}, {"message", message}}}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<std::string> subject_tenant(std::string_view subject,
                                          std::string_view prefix,
                                          std::string_view verb) {
  std::string head = std::string{prefix} + ".api.v1.tenant.";
  if (subject.size() <= head.size() + verb.size() + 1 ||
      subject.substr(0, head.size()) != head)
    return std::nullopt;
  auto rest = subject.substr(head.size());
  auto dot = rest.find('.');
  if (dot == 0 || dot == std::string_view::npos || rest.substr(dot + 1) != verb)
    return std::nullopt;
  return std::string{rest.substr(0, dot)};
}

caf::expected<status_request>
decode_status_request(std::string_view body, bool wait,
                      const std::optional<std::string>& subject_tenant) {
  auto j = parse_untrusted_json(body, 16, "request body");
  if (!j)
    return j.error();
  if (!j->is_object())
    return bad_request("request body must be a JSON object");
  for (auto& [key, value] : j->items())
    if (key != "job_id" && key != "tenant" && (!wait || key != "timeout_ms"))
      return bad_request("unknown field '" + key + "'");
  status_request out;
  auto id = j->find("job_id");
  if (id == j->end() || !id->is_string() || id->get<std::string>().empty())
    return bad_request("field 'job_id' must be a non-empty string");
  out.job_id = id->get<std::string>();
  if (out.job_id.size() > max_job_id)
    return bad_request("field 'job_id' is longer than 512 bytes");
  // An id is also a subject token of the job's events: no wildcard, space
  // or control character.
  for (unsigned char c : out.job_id)
    if (c <= ' ' || c == 0x7f || c == '*' || c == '>')
      return bad_request("field 'job_id' holds a character the API does not "
                         "look up "
                         "(space, control, '*' or '>')");
  if (auto t = j->find("tenant"); t != j->end()) {
    if (!t->is_string() || t->get<std::string>().size() > 256)
      return bad_request("field 'tenant' must be a string of at most 256 "
                         "bytes");
    out.tenant = t->get<std::string>();
    if (subject_tenant && out.tenant != *subject_tenant)
      return bad_request("field 'tenant' ('" + out.tenant +
                         "') differs from the subject's tenant ('" +
                         *subject_tenant + "')");
  }
  if (subject_tenant)
    out.tenant = *subject_tenant;
  if (auto t = j->find("timeout_ms"); t != j->end()) {
    if (!t->is_number_integer() || t->get<std::int64_t>() < 0 ||
        t->get<std::int64_t>() > max_status_wait.count())
      return bad_request("field 'timeout_ms' must be an integer from 0 to " +
                         std::to_string(max_status_wait.count()));
    out.timeout = std::chrono::milliseconds{t->get<std::int64_t>()};
  }
  return out;
}

std::string encode_status_reply(const std::optional<job_status>& st,
                                const std::string& job_id,
                                const std::string& tenant,
                                std::optional<bool> done) {
  // Another tenant's job is answered exactly like a job that does not
  // exist: the reply says nothing about whether it does.
  if (!st || st->tenant != tenant)
    return encode_api_error("not_found",
                            "no job '" + job_id +
                                "' (a job just submitted has none until a node "
                                "takes it)");
  json j{{"ok", true}, {"job", st->doc}};
  if (done)
    j["done"] = *done;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

struct status_api::impl {
  std::shared_ptr<nats_client> nats;
  nats_config ncfg;
  std::shared_ptr<status_store> store;
  std::unique_ptr<callback_store> callbacks;
  std::unique_ptr<batch_store> batches;
  std::shared_ptr<blocking_pool> workers;
  std::unique_ptr<job_waiters> waiters;
  std::vector<nats_subscription> subs;
  std::atomic<std::int64_t> misdirected{0};

  void respond(const std::string& reply, const std::string& body) {
    nats->publish(reply, body);
  }

  void handle(const std::string& subject, const std::string& body,
              const std::string& reply);
  void on_wait(const status_request& req, const std::optional<job_status>& st,
               const std::string& reply);
};

void status_api::impl::handle(const std::string& subject,
                              const std::string& body,
                              const std::string& reply) {
  if (ends_with(subject, ".batch_status")) {
    respond(reply, answer_batch_status(
                       *batches, body,
                       subject_tenant(subject, ncfg.prefix, "batch_status")));
    return;
  }
  if (ends_with(subject, ".complete")) {
    respond(reply,
            answer_complete(*callbacks, body,
                            subject_tenant(subject, ncfg.prefix, "complete")));
    return;
  }
  bool wait = ends_with(subject, ".wait");
  auto tenant = subject_tenant(subject, ncfg.prefix, wait ? "wait" : "status");
  auto req = decode_status_request(body, wait, tenant);
  if (!req) {
    auto msg = describe(req.error());
    if (auto pos = msg.find(": "); pos != std::string::npos)
      msg = msg.substr(pos + 2); // describe() prefixes the code
    respond(reply, encode_api_error(to_string(code_of(req.error())), msg));
    return;
  }
  auto st = store->status(req->job_id);
  if (!st) {
    respond(reply, encode_api_error("unavailable", "cannot read the job: " +
                                                       describe(st.error())));
    return;
  }
  if (!wait) {
    respond(reply, encode_status_reply(*st, req->job_id, req->tenant, {}));
    return;
  }
  on_wait(*req, *st, reply);
}

void status_api::impl::on_wait(const status_request& req,
                               const std::optional<job_status>& st,
                               const std::string& reply) {
  // Another tenant's job waits like a job that does not exist (until the
  // deadline, then not_found): the reply's timing says nothing either.
  bool visible = st && st->tenant == req.tenant;
  if ((visible && terminal_state(st->state)) || req.timeout.count() == 0) {
    bool done = visible && terminal_state(st->state);
    respond(reply, encode_status_reply(st, req.job_id, req.tenant, done));
    return;
  }
  job_waiters::waiter w{reply, req.tenant,
                        job_waiters::clock::now() + req.timeout};
  if (!waiters->add(req.job_id,
                    visible ? st->doc.value("pipeline", "") : std::string{},
                    std::move(w)))
    respond(reply,
            encode_api_error("unavailable", "this node holds its most waits (" +
                                                std::to_string(max_waiters) +
                                                "); retry"));
}

status_api::status_api(std::shared_ptr<nats_client> nats, nats_config ncfg,
                       std::string pg_url,
                       std::shared_ptr<blocking_pool> workers)
    : impl_(std::make_shared<impl>()) {
  impl_->nats = std::move(nats);
  impl_->ncfg = std::move(ncfg);
  impl_->store = std::make_shared<status_store>(pg_url);
  impl_->batches = std::make_unique<batch_store>(pg_url);
  impl_->callbacks = std::make_unique<callback_store>(std::move(pg_url));
  impl_->workers = std::move(workers);
  impl_->waiters = std::make_unique<job_waiters>(
      impl_->nats, impl_->ncfg.prefix, impl_->store, max_waiters);
}

status_api::~status_api() {
  stop();
}

std::size_t status_api::waiting() const {
  return impl_->waiters->size();
}

namespace {

void on_request(const std::weak_ptr<status_api::impl>& weak,
                const nats_msg& msg) {
  auto im = weak.lock();
  if (!im)
    return;
  std::string reply{msg.reply()};
  // Answers go to inboxes only (as the submit API's: docs/security.md).
  if (!is_inbox_subject(reply, im->ncfg.inbox_prefix)) {
    if (im->misdirected++ % 1000 == 0)
      spdlog::warn("status api: dropped a request whose reply subject '{}' "
                   "is not an inbox under '{}.'",
                   reply.substr(0, 128), im->ncfg.inbox_prefix);
    return;
  }
  auto posted = im->workers->post(
      [im, subject = std::string{msg.subject()}, body = std::string{msg.data()},
       reply] { im->handle(subject, body, reply); });
  if (!posted)
    im->respond(reply, encode_api_error("unavailable",
                                        "node is overloaded or shutting "
                                        "down; retry"));
}

} // namespace

caf::error status_api::start() {
  impl_->waiters->start();
  auto p = impl_->ncfg.prefix + ".api.v1.";
  subscribe_options so;
  so.queue = "troupe_api";
  return nats_subscription::open_each(
      *impl_->nats,
      {p + "status", p + "wait", p + "complete", p + "batch_status",
       p + "tenant.*.status", p + "tenant.*.wait", p + "tenant.*.complete",
       p + "tenant.*.batch_status"},
      [weak = std::weak_ptr<impl>(impl_)](nats_msg m) { on_request(weak, m); },
      so, impl_->subs);
}

void status_api::stop() {
  if (impl_->subs.empty())
    return;
  for (auto& s : impl_->subs)
    s.close(2000);
  impl_->subs.clear();
  impl_->workers->stop();
  impl_->waiters->stop();
  impl_->nats->flush(2000);
}

} // namespace troupe
