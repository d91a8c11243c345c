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

bool nats_msg::ack_sync() const {
  jsErrCode jerr = static_cast<jsErrCode>(0);
  return natsMsg_AckSync(m_.get(), nullptr, &jerr) == NATS_OK;
}

void nats_msg::nak(std::int64_t delay_ms) const {
  if (delay_ms > 0)
    natsMsg_NakWithDelay(m_.get(), delay_ms, nullptr);
  else
    natsMsg_Nak(m_.get(), nullptr);
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
      conn_(std::exchange(other.conn_, nullptr)) {}

js_pull_consumer&
js_pull_consumer::operator=(js_pull_consumer&& other) noexcept {
  if (this != &other) {
    close();
    sub_ = std::exchange(other.sub_, nullptr);
    conn_ = std::exchange(other.conn_, nullptr);
  }
  return *this;
}

js_pull_consumer::~js_pull_consumer() {
  close();
}

caf::expected<js_pull_consumer>
js_pull_consumer::bind(nats_client& nats, const std::string& stream,
                       const std::string& subject, const std::string& durable,
                       bool existing) {
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream.c_str();
  if (existing)
    so.Consumer = durable.c_str();
  jsErrCode jerr = static_cast<jsErrCode>(0);
  js_pull_consumer out;
  out.conn_ = nats.conn();
  if (auto s = js_PullSubscribe(&out.sub_, nats.js(), subject.c_str(),
                                durable.c_str(), nullptr, &so, &jerr);
      s != NATS_OK)
    return nats_error(s, "pull subscribe to " + durable);
  return out;
}

namespace {

/// The messages of a fetch's list, owned by the result.
caf::expected<std::vector<nats_msg>> take_list(natsMsgList& list,
                                               natsStatus s) {
  std::vector<nats_msg> out;
  // Whatever the status, messages in the list were delivered to us: they
  // are taken, never dropped (a dropped one would wait for AckWait).
  // NATS_NOT_FOUND is a no-wait request's "nothing more".
  if (s != NATS_OK && s != NATS_TIMEOUT && s != NATS_NOT_FOUND &&
      list.Count == 0) {
    natsMsgList_Destroy(&list);
    return nats_error(s, "fetch");
  }
  out.reserve(static_cast<std::size_t>(list.Count));
  for (int i = 0; i < list.Count; ++i) {
    out.emplace_back(list.Msgs[i]);
    list.Msgs[i] = nullptr; // owned by `out` now
  }
  natsMsgList_Destroy(&list);
  return out;
}

} // namespace

namespace {

/// The batch to ask nats.c 3.4.1's Fetch for. Its `_fetch` moves the k
/// messages already waiting in the subscription (late deliveries of a
/// request that expired: a slow link, a stopped node, a partition that
/// heals) into a list of `batch` slots, lowers the request to batch - k,
/// and then reads until its count equals that: with 2k > batch it never
/// does and writes past the list until the timeout (fixed upstream in
/// 3.9.0). That was the heap corruption of the chaos runs
/// (docs/reliability.md). While messages wait, one at a time: Fetch then
/// takes one of them and sends no request. (A burst arriving between the
/// count and the call could still do it; the window is that short.)
int safe_batch(natsSubscription* sub, int batch) {
  int queued = 0;
  if (natsSubscription_GetPending(sub, &queued, nullptr) == NATS_OK &&
      queued > 0)
    return 1;
  return batch;
}

} // namespace

caf::expected<std::vector<nats_msg>>
js_pull_consumer::fetch(int batch, std::int64_t timeout_ms) {
  natsMsgList list{nullptr, 0};
  jsErrCode jerr = static_cast<jsErrCode>(0);
  auto s = natsSubscription_Fetch(&list, sub_, safe_batch(sub_, batch),
                                  timeout_ms, &jerr);
  return take_list(list, s);
}

caf::expected<std::vector<nats_msg>> js_pull_consumer::fetch_now(int batch) {
  natsMsgList list{nullptr, 0};
  jsFetchRequest req;
  jsFetchRequest_Init(&req);
  req.Batch = safe_batch(sub_, batch);
  req.NoWait = true;
  // nats-server 2.9.10 holds a no-wait request with nothing to hand out
  // until it expires: with 200 ms a pipeline with an empty high band ran
  // 8 times slower (2,000 jobs of 10 ms: 15.4 s against 1.8 s); with 1 ms,
  // 1.84 s. A late answer waits in the subscription for the next fetch.
  req.Expires = 1LL * 1000000;
  auto s = natsSubscription_FetchRequest(&list, sub_, &req);
  return take_list(list, s);
}

std::string js_pull_consumer::inbox() const {
  auto* subject = sub_ ? natsSubscription_GetSubject(sub_) : nullptr;
  return subject ? subject : "";
}

void js_pull_consumer::close() {
  if (!sub_)
    return;
  retire(conn_, sub_);
  sub_ = nullptr;
}

} // namespace troupe
