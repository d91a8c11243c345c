#include "runtime/nats/nats_subscription.hpp"

#include <algorithm>
#include <chrono>
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

/// Unsubscribes `sub` and frees it. nats.c 3.4.1's read loop looks a
/// subscription up, lets go of the table's lock, then locks the
/// subscription (fixed upstream in 3.6.0, nats-io/nats.c#638): freed in
/// between by another thread, the read loop aborts in pthread_mutex_lock or
/// writes into freed memory. Seen as "fatal signal 6" in
/// natsConn_processMsg when a node stopped while heartbeats flowed, and
/// likely behind the heap corruption of the chaos runs (docs/reliability.md).
/// The read loop handles the socket's input in order, so once a PING sent
/// after the unsubscribe has its PONG, no message it took for this
/// subscription is still being handled, and freeing it is safe.
void retire(natsConnection* nc, natsSubscription* sub) {
  natsSubscription_Unsubscribe(sub); // an error if already closed: fine
  if (nc && natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED)
    natsConnection_FlushTimeout(nc, 1000);
  natsSubscription_Destroy(sub);
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
    : sub_(std::exchange(other.sub_, nullptr)),
      conn_(std::exchange(other.conn_, nullptr)) {}

nats_subscription&
nats_subscription::operator=(nats_subscription&& other) noexcept {
  if (this != &other) {
    close();
    sub_ = std::exchange(other.sub_, nullptr);
    conn_ = std::exchange(other.conn_, nullptr);
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
  out.conn_ = nats.conn();
  return out;
}

void nats_subscription::close(int drain_ms) {
  if (!sub_)
    return;
  if (drain_ms > 0 && natsSubscription_Drain(sub_) == NATS_OK)
    natsSubscription_WaitForDrainCompletion(sub_, drain_ms);
  retire(conn_, sub_);
  sub_ = nullptr;
}

void nats_msg::send_ack(const char* what) const {
  auto* reply = natsMsg_GetReply(m_.get());
  if (conn_ && reply)
    natsConnection_PublishString(conn_, reply, what);
}

bool nats_msg::ack_sync() const {
  auto* reply = natsMsg_GetReply(m_.get());
  natsMsg* answer = nullptr;
  if (!conn_ || !reply ||
      natsConnection_RequestString(&answer, conn_, reply, "+ACK", 5000) !=
          NATS_OK)
    return false;
  natsMsg_Destroy(answer);
  return true;
}

void nats_msg::nak(std::int64_t delay_ms) const {
  if (delay_ms <= 0) {
    send_ack("-NAK");
    return;
  }
  auto body = "-NAK {\"delay\":" + std::to_string(delay_ms * 1000000) + "}";
  send_ack(body.c_str());
}

// -- synchronous subscriptions
// -------------------------------------------------

nats_sync_subscription::nats_sync_subscription(
    nats_sync_subscription&& other) noexcept
    : sub_(std::exchange(other.sub_, nullptr)),
      conn_(std::exchange(other.conn_, nullptr)) {}

nats_sync_subscription&
nats_sync_subscription::operator=(nats_sync_subscription&& other) noexcept {
  if (this != &other) {
    close();
    sub_ = std::exchange(other.sub_, nullptr);
    conn_ = std::exchange(other.conn_, nullptr);
  }
  return *this;
}

nats_sync_subscription::~nats_sync_subscription() {
  close();
}

caf::error
nats_subscription::open_each(nats_client& nats,
                             const std::vector<std::string>& subjects,
                             const handler& fn, const subscribe_options& opts,
                             std::vector<nats_subscription>& out) {
  for (const auto& subject : subjects) {
    auto sub = open(nats, subject, fn, opts);
    if (!sub)
      return sub.error();
    out.push_back(std::move(*sub));
  }
  return caf::none;
}

caf::expected<nats_sync_subscription>
nats_sync_subscription::open(nats_client& nats, const std::string& subject) {
  nats_sync_subscription out;
  out.conn_ = nats.conn();
  if (auto s =
          natsConnection_SubscribeSync(&out.sub_, nats.conn(), subject.c_str());
      s != NATS_OK)
    return nats_error(s, "subscribe to " + subject);
  return out;
}

std::optional<nats_msg> nats_sync_subscription::next(std::int64_t timeout_ms) {
  natsMsg* m = nullptr;
  if (!sub_ || natsSubscription_NextMsg(&m, sub_, timeout_ms) != NATS_OK)
    return std::nullopt;
  return nats_msg{m};
}

void nats_sync_subscription::close() {
  if (!sub_)
    return;
  retire(conn_, sub_);
  sub_ = nullptr;
}

// -- pull consumers
// ------------------------------------------------------------

js_pull_consumer::js_pull_consumer(js_pull_consumer&& other) noexcept
    : sub_(std::exchange(other.sub_, nullptr)),
      conn_(std::exchange(other.conn_, nullptr)),
      next_subject_(std::move(other.next_subject_)),
      inbox_(std::move(other.inbox_)), requests_(other.requests_),
      current_(std::move(other.current_)) {}

js_pull_consumer&
js_pull_consumer::operator=(js_pull_consumer&& other) noexcept {
  if (this != &other) {
    close();
    sub_ = std::exchange(other.sub_, nullptr);
    conn_ = std::exchange(other.conn_, nullptr);
    next_subject_ = std::move(other.next_subject_);
    inbox_ = std::move(other.inbox_);
    requests_ = other.requests_;
    current_ = std::move(other.current_);
  }
  return *this;
}

js_pull_consumer::~js_pull_consumer() {
  close();
}

namespace {

/// Makes the durable consumer `durable` for `subject` (as a pull
/// subscription would: explicit acks, from the first message), or finds it
/// made already.
natsStatus add_consumer(nats_client& nats, const std::string& stream,
                        const std::string& subject,
                        const std::string& durable) {
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = durable.c_str();
  cc.FilterSubject = subject.c_str();
  cc.AckPolicy = js_AckExplicit;
  cc.DeliverPolicy = js_DeliverAll;
  jsConsumerInfo* ci = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  auto s = js_AddConsumer(&ci, nats.js(), stream.c_str(), &cc, nullptr, &jerr);
  if (ci)
    jsConsumerInfo_Destroy(ci);
  return s;
}

natsStatus consumer_info(nats_client& nats, const std::string& stream,
                         const std::string& durable) {
  jsConsumerInfo* ci = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  auto s = js_GetConsumerInfo(&ci, nats.js(), stream.c_str(), durable.c_str(),
                              nullptr, &jerr);
  if (ci)
    jsConsumerInfo_Destroy(ci);
  return s;
}

/// A pull request's answer that carries no job: its status code ("404" no
/// messages, "408" expired, "409" consumer deleted, leadership change, ...,
/// "100" heartbeat), or "" for a message. Only messages have a reply
/// subject (the ack subject).
std::string status_of(natsMsg* m) {
  auto* reply = natsMsg_GetReply(m);
  if (reply && *reply)
    return "";
  const char* code = nullptr;
  if (natsMsgHeader_Get(m, "Status", &code) == NATS_OK && code && *code)
    return code;
  return "000"; // no reply and no status: not a delivery either
}

std::string description_of(natsMsg* m) {
  const char* text = nullptr;
  if (natsMsgHeader_Get(m, "Description", &text) == NATS_OK && text)
    return text;
  return "no description";
}

} // namespace

caf::expected<js_pull_consumer>
js_pull_consumer::bind(nats_client& nats, const std::string& stream,
                       const std::string& subject, const std::string& durable,
                       bool existing) {
  auto s = existing ? consumer_info(nats, stream, durable)
                    : add_consumer(nats, stream, subject, durable);
  if (s != NATS_OK)
    return nats_error(s, "pull subscribe to " + durable);
  js_pull_consumer out;
  out.conn_ = nats.conn();
  out.next_subject_ = "$JS.API.CONSUMER.MSG.NEXT." + stream + "." + durable;
  natsInbox* inbox = nullptr;
  if (natsInbox_Create(&inbox) != NATS_OK)
    return nats_error(NATS_NO_MEMORY, "inbox for " + durable);
  // natsInbox_Create names "_INBOX.<nuid>"; the client's own prefix keeps
  // replies within what its permissions allow.
  std::string name = inbox;
  natsInbox_Destroy(inbox);
  out.inbox_ = nats.inbox_prefix() + name.substr(name.find('.'));
  if (auto s2 = natsConnection_SubscribeSync(&out.sub_, nats.conn(),
                                             (out.inbox_ + ".*").c_str());
      s2 != NATS_OK)
    return nats_error(s2, "pull subscribe to " + durable);
  // A backlog of deliveries must never be dropped as a slow consumer.
  natsSubscription_SetPendingLimits(out.sub_, 10000000, 1024 * 1024 * 1024);
  return out;
}

caf::expected<std::vector<nats_msg>>
js_pull_consumer::fetch(int batch, std::int64_t timeout_ms) {
  auto out = fetch_now(batch);
  if (!out || !out->empty())
    return out;
  // Nothing now: one request that waits (the server ends it a little
  // before our wait, so its 408 comes back within it) for the first
  // message and what comes with it.
  auto expires_ms = std::max<std::int64_t>(1, timeout_ms - timeout_ms / 10);
  if (auto err = request(batch, expires_ms * 1000000, false))
    return err;
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds{timeout_ms};
  if (auto err = read_answers(batch, deadline, true, *out))
    return err;
  return out;
}

caf::expected<std::vector<nats_msg>> js_pull_consumer::fetch_now(int batch) {
  std::vector<nats_msg> out;
  if (!sub_ || batch <= 0)
    return out;
  // Late deliveries of an earlier request first: they are ours already
  // (and no status queued with them speaks for a request of this fetch).
  current_.clear();
  int queued = 0;
  natsSubscription_GetPending(sub_, &queued, nullptr);
  auto soon = std::chrono::steady_clock::now() + std::chrono::milliseconds{1};
  if (queued > 0)
    if (auto err = read_answers(std::min(queued, batch), soon, false, out))
      return err;
  if (!out.empty())
    return out;
  // What the consumer holds now. nats-server 2.9.10 holds a no-wait
  // request with nothing to hand out until it expires: with 200 ms a
  // pipeline with an empty high band ran 8 times slower (2,000 jobs of
  // 10 ms: 15.4 s against 1.8 s); with 1 ms, 1.84 s.
  if (auto err = request(batch, 1000000, true))
    return err;
  auto guard = std::chrono::steady_clock::now() + std::chrono::seconds{1};
  if (auto err = read_answers(batch, guard, false, out))
    return err;
  return out;
}

caf::error js_pull_consumer::request(int batch, std::int64_t expires_ns,
                                     bool no_wait) {
  current_ = inbox_ + "." + std::to_string(++requests_);
  auto body = "{\"batch\":" + std::to_string(batch) +
              ",\"expires\":" + std::to_string(expires_ns) +
              (no_wait ? ",\"no_wait\":true}" : "}");
  if (auto s = natsConnection_PublishRequestString(
          conn_, next_subject_.c_str(), current_.c_str(), body.c_str());
      s != NATS_OK)
    return nats_error(s, "fetch");
  return caf::none;
}

/// Reads answers into `out` until it holds `batch`, the current request
/// ends, or `deadline`; with `first_then_burst`, once a message came, only
/// what follows it at once (within a millisecond) is taken. A message is
/// taken whichever request it answers; a status counts only for the
/// current request. An error only when the request failed before any
/// message (a 409: consumer deleted, leadership change, ...).
caf::error js_pull_consumer::read_answers(
    int batch, std::chrono::steady_clock::time_point deadline,
    bool first_then_burst, std::vector<nats_msg>& out) {
  auto cap = out.size() + static_cast<std::size_t>(batch);
  while (out.size() < cap) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (first_then_burst && !out.empty())
      left = std::min<std::int64_t>(left, 1);
    natsMsg* m = nullptr;
    auto s =
        natsSubscription_NextMsg(&m, sub_, std::max<std::int64_t>(left, 1));
    if (s == NATS_TIMEOUT)
      return caf::none;
    if (s != NATS_OK)
      return out.empty() ? nats_error(s, "fetch") : caf::none;
    auto status = status_of(m);
    if (status.empty()) {
      out.emplace_back(m, conn_);
      continue;
    }
    bool ours = current_ == natsMsg_GetSubject(m);
    auto text = description_of(m);
    natsMsg_Destroy(m);
    if (!ours || status == "100")
      continue; // an earlier request's end, or a heartbeat
    if (status == "404" || status == "408" || !out.empty())
      return caf::none;
    return make_error(errc::internal, "fetch: " + status + " " + text + " (" +
                                          next_subject_ + ")");
  }
  return caf::none;
}

void js_pull_consumer::close() {
  if (!sub_)
    return;
  retire(conn_, sub_);
  sub_ = nullptr;
}

} // namespace troupe
