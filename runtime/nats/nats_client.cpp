#include "runtime/nats/nats_client.hpp"

#include <cstring>

#include <spdlog/spdlog.h>

#include "messages/errc.hpp"

namespace troupe {

caf::error nats_error(natsStatus s, const std::string& what) {
  std::string msg = what + ": " + natsStatus_GetText(s);
  if (auto last = nats_GetLastError(nullptr); last && *last)
    msg += std::string{" ("} + last + ")";
  auto code = (s == NATS_CONNECTION_CLOSED || s == NATS_NO_SERVER ||
               s == NATS_TIMEOUT || s == NATS_CONNECTION_DISCONNECTED ||
               s == NATS_STALE_CONNECTION || s == NATS_NO_RESPONDERS)
                  ? errc::unavailable
                  : errc::internal;
  return make_error(code, std::move(msg));
}

void close_nats_library() {
  nats_CloseAndWait(5000);
}

bool is_inbox_subject(std::string_view reply, std::string_view inbox_prefix) {
  if (reply.size() <= inbox_prefix.size() + 1 ||
      reply.compare(0, inbox_prefix.size(), inbox_prefix) != 0 ||
      reply[inbox_prefix.size()] != '.')
    return false;
  char prev = '.';
  for (char c : reply) {
    auto u = static_cast<unsigned char>(c);
    if (c == '*' || c == '>' || u <= ' ' || u == 0x7f ||
        (c == '.' && prev == '.'))
      return false;
    prev = c;
  }
  return prev != '.';
}

std::vector<std::string> split_urls(const std::string& urls) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : urls) {
    if (c == ',') {
      if (!cur.empty())
        out.push_back(cur);
      cur.clear();
    } else if (c != ' ') {
      cur += c;
    }
  }
  if (!cur.empty())
    out.push_back(cur);
  return out;
}

namespace {

// Callbacks run on nats.c's own thread, possibly after the nats_client is
// gone: their closure is a heap shared_ptr to the health (never freed).
void on_disconnected(natsConnection*, void* closure) {
  auto& h = *static_cast<std::shared_ptr<nats_health>*>(closure);
  h->connected = false;
  if (h->closing)
    return;
  ++h->disconnects;
  spdlog::warn("nats: disconnected, reconnecting");
}

void on_reconnected(natsConnection* nc, void* closure) {
  auto& h = *static_cast<std::shared_ptr<nats_health>*>(closure);
  h->connected = true;
  ++h->reconnects;
  char buf[256] = {0};
  natsConnection_GetConnectedUrl(nc, buf, sizeof(buf));
  spdlog::info("nats: reconnected to {}", redact_url(buf));
}

void on_closed(natsConnection*, void* closure) {
  // The closure is never freed: nats.c may still deliver a callback after
  // this one (seen with failed TLS connects), and one small object per
  // connection for the life of the process is cheaper than a crash.
  (*static_cast<std::shared_ptr<nats_health>*>(closure))->connected = false;
}

// No closure: this callback may run after the connection's other callbacks
// released theirs. Permission refusals are read where they matter, with
// natsConnection_GetLastError after a flush (runtime/client/admin_client.cpp).
void on_async_error(natsConnection* nc, natsSubscription*, natsStatus err,
                    void*) {
  const char* text = nullptr;
  natsConnection_GetLastError(nc, &text);
  std::string what = text && *text ? text : natsStatus_GetText(err);
  spdlog::warn("nats: asynchronous error: {}", what);
}

/// Applies credentials and TLS; the message names the file that failed.
natsStatus apply_auth(natsOptions* opts, const nats_auth& a,
                      std::string* failed) {
  natsStatus s = NATS_OK;
  if (!a.user.empty())
    s = natsOptions_SetUserInfo(opts, a.user.c_str(), a.password.c_str());
  if (s == NATS_OK && !a.token.empty())
    s = natsOptions_SetToken(opts, a.token.c_str());
  if (s == NATS_OK && !a.creds_file.empty()) {
    s = natsOptions_SetUserCredentialsFromFiles(opts, a.creds_file.c_str(),
                                                nullptr);
    if (s != NATS_OK)
      *failed = "credentials file " + a.creds_file;
  }
  bool tls = !a.tls_ca.empty() || !a.tls_cert.empty();
  if (s == NATS_OK && tls)
    s = natsOptions_SetSecure(opts, true);
  if (s == NATS_OK && !a.tls_ca.empty()) {
    s = natsOptions_LoadCATrustedCertificates(opts, a.tls_ca.c_str());
    if (s != NATS_OK)
      *failed = "TLS CA file " + a.tls_ca;
  }
  if (s == NATS_OK && !a.tls_cert.empty()) {
    s = natsOptions_LoadCertificatesChain(opts, a.tls_cert.c_str(),
                                          a.tls_key.c_str());
    if (s != NATS_OK)
      *failed = "TLS certificate " + a.tls_cert + " / key " + a.tls_key;
  }
  return s;
}

/// Says what went wrong in words an operator can act on.
std::string explain(natsStatus s) {
  const char* last = nats_GetLastError(nullptr);
  std::string detail = last && *last ? last : "";
  auto has = [&](const char* w) { return detail.find(w) != std::string::npos; };
  if (s == NATS_CONNECTION_AUTH_FAILED || has("uthorization"))
    return "authorization violation (wrong user, password, token or "
           "credentials)";
  if (s == NATS_SSL_ERROR || has("SSL") || has("certificate") ||
      has("handshake"))
    return "TLS handshake failed (" + detail + ")";
  if (s == NATS_SECURE_CONNECTION_REQUIRED)
    return "the server requires TLS: give a CA (tls_ca)";
  if (s == NATS_SECURE_CONNECTION_WANTED)
    return "the server does not offer TLS";
  return natsStatus_GetText(s) + (detail.empty() ? "" : " (" + detail + ")");
}

} // namespace

nats_client::~nats_client() {
  close();
}

void nats_client::close() {
  health_->closing = true;
  prompt_.reset(); // its thread uses the connection

  if (js_) {
    jsCtx_Destroy(js_);
    js_ = nullptr;
  }
  {
    std::lock_guard<std::mutex> guard{batch_mtx_};
    if (batch_js_)
      jsCtx_Destroy(batch_js_);
    batch_js_ = nullptr;
  }
  if (conn_) {
    natsConnection_Close(conn_);
    natsConnection_Destroy(conn_);
    conn_ = nullptr;
  }
}

caf::expected<std::shared_ptr<nats_client>>
nats_client::connect(const nats_connect_options& o) {
  std::shared_ptr<nats_client> c{new nats_client};
  natsOptions* opts = nullptr;
  if (auto s = natsOptions_Create(&opts); s != NATS_OK)
    return nats_error(s, "nats options");
  auto urls = split_urls(o.urls);
  std::vector<const char*> ptrs;
  for (auto& u : urls)
    ptrs.push_back(u.c_str());
  natsStatus s = NATS_OK;
  if (ptrs.empty())
    s = NATS_INVALID_ARG;
  if (s == NATS_OK)
    s = natsOptions_SetServers(opts, ptrs.data(),
                               static_cast<int>(ptrs.size()));
  if (s == NATS_OK)
    s = natsOptions_SetName(opts, o.name.c_str());
  if (s == NATS_OK)
    s = natsOptions_SetTimeout(opts, o.connect_timeout_ms);
  // Reconnect forever: a node outlives NATS outages and resumes by itself.
  if (s == NATS_OK)
    s = natsOptions_SetMaxReconnect(opts, -1);
  if (s == NATS_OK)
    s = natsOptions_SetReconnectWait(opts, 250);
  // Deliberately never freed (see on_closed).
  auto* closure = new std::shared_ptr<nats_health>(c->health_);
  if (s == NATS_OK)
    s = natsOptions_SetDisconnectedCB(opts, on_disconnected, closure);
  if (s == NATS_OK)
    s = natsOptions_SetReconnectedCB(opts, on_reconnected, closure);
  if (s == NATS_OK)
    s = natsOptions_SetClosedCB(opts, on_closed, closure);
  if (s == NATS_OK)
    s = natsOptions_SetErrorHandler(opts, on_async_error, nullptr);
  if (s == NATS_OK && o.send_asap)
    s = natsOptions_SetSendAsap(opts, true);
  if (s == NATS_OK && o.inbox_prefix != "_INBOX")
    s = natsOptions_SetCustomInboxPrefix(opts, o.inbox_prefix.c_str());
  c->inbox_prefix_ = o.inbox_prefix;
  std::string auth_failed;
  if (s == NATS_OK)
    s = apply_auth(opts, o.auth, &auth_failed);
  if (s == NATS_OK && o.retry_on_failed_connect)
    s = natsOptions_SetRetryOnFailedConnect(opts, true, nullptr, nullptr);
  if (s == NATS_OK)
    s = natsConnection_Connect(&c->conn_, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK) {
    std::string shown;
    for (auto& u : urls)
      shown += (shown.empty() ? "" : ",") + redact_url(u);
    if (!auth_failed.empty())
      return make_error(errc::internal,
                        "cannot use " + auth_failed + ": " + explain(s));
    auto why = explain(s);
    // Wrong credentials or certificates do not fix themselves: not
    // "unavailable", so start-up does not keep retrying them.
    bool fatal = why.rfind("authorization", 0) == 0 ||
                 why.rfind("TLS", 0) == 0 || why.rfind("the server", 0) == 0;
    return make_error(fatal ? errc::internal : errc::unavailable,
                      "cannot connect to NATS at " + shown + ": " + why);
  }
  c->health_->connected =
      natsConnection_Status(c->conn_) == NATS_CONN_STATUS_CONNECTED;
  if (auto s2 = natsConnection_JetStream(&c->js_, c->conn_, nullptr);
      s2 != NATS_OK)
    return nats_error(s2, "JetStream context");
  return c;
}

caf::expected<std::int64_t> nats_client::rtt_us() const {
  std::int64_t rtt = 0; // nanoseconds
  if (auto s = natsConnection_GetRTT(conn_, &rtt); s != NATS_OK)
    return nats_error(s, "round trip");
  return rtt / 1000;
}

void nats_client::flush_soon() {
  if (!conn_ || health_->closing)
    return;
  std::call_once(prompt_once_, [this] {
    prompt_ = std::make_unique<prompt_flusher>(conn_);
    prompt_made_.store(true, std::memory_order_release);
  });
  if (prompt_)
    prompt_->kick();
}

std::uint64_t nats_client::prompt_flushes() const noexcept {
  return prompt_made_.load(std::memory_order_acquire) && prompt_
             ? prompt_->flushes()
             : 0;
}

caf::error nats_client::publish(const std::string& subject,
                                const std::string& data) {
  auto s = natsConnection_Publish(conn_, subject.c_str(), data.data(),
                                  static_cast<int>(data.size()));
  if (s != NATS_OK)
    return nats_error(s, "publish to " + subject);
  return caf::none;
}

caf::expected<std::uint64_t> nats_client::js_publish(const std::string& subject,
                                                     const std::string& data,
                                                     const std::string& msg_id,
                                                     std::int64_t timeout_ms,
                                                     bool* duplicate) {
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = timeout_ms;
  if (!msg_id.empty())
    po.MsgId = msg_id.c_str();
  jsPubAck* ack = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  auto s = js_Publish(&ack, js_, subject.c_str(), data.data(),
                      static_cast<int>(data.size()), &po, &jerr);
  if (s != NATS_OK) {
    if (ack)
      jsPubAck_Destroy(ack);
    if (s == NATS_NO_RESPONDERS)
      return make_error(errc::unavailable,
                        "no JetStream stream accepts subject " + subject);
    return nats_error(s, "JetStream publish to " + subject);
  }
  auto seq = ack->Sequence;
  if (duplicate)
    *duplicate = ack->Duplicate;
  jsPubAck_Destroy(ack);
  return seq;
}

std::string nats_client::stored_subject(const std::string& stream,
                                        std::uint64_t seq) {
  natsMsg* m = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (js_GetMsg(&m, js_, stream.c_str(), seq, nullptr, &jerr) != NATS_OK)
    return {};
  std::string subject = natsMsg_GetSubject(m);
  natsMsg_Destroy(m);
  return subject;
}

caf::expected<std::string> nats_client::request(const std::string& subject,
                                                const std::string& data,
                                                std::int64_t timeout_ms) {
  natsMsg* reply = nullptr;
  auto s = natsConnection_Request(&reply, conn_, subject.c_str(), data.data(),
                                  static_cast<int>(data.size()), timeout_ms);
  if (s != NATS_OK)
    return nats_error(s, "request on " + subject);
  std::string out{natsMsg_GetData(reply),
                  static_cast<std::size_t>(natsMsg_GetDataLength(reply))};
  natsMsg_Destroy(reply);
  return out;
}

caf::error nats_client::flush(std::int64_t timeout_ms) {
  auto s = natsConnection_FlushTimeout(conn_, timeout_ms);
  if (s != NATS_OK)
    return nats_error(s, "flush");
  return caf::none;
}

caf::error nats_client::ensure_stream(const nats_config& cfg) {
  subjects subj{cfg.prefix};
  auto wildcard = subj.jobs_wildcard();
  const char* subjects_arr[] = {wildcard.c_str()};
  jsStreamConfig sc;
  jsStreamConfig_Init(&sc);
  sc.Name = cfg.stream.c_str();
  sc.Subjects = subjects_arr;
  sc.SubjectsLen = 1;
  sc.Retention = js_WorkQueuePolicy;
  sc.Storage = js_FileStorage;
  sc.Replicas = cfg.replicas;
  sc.Duplicates = cfg.duplicate_window.count() * 1000000LL;
  sc.MaxMsgSize = static_cast<std::int32_t>(cfg.max_payload + 64 * 1024);
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  auto s = js_AddStream(&si, js_, &sc, nullptr, &jerr);
  // Another node creating the stream at the same moment makes ours fail
  // with "name exists" or "subjects overlap": update it instead.
  if (s != NATS_OK &&
      (jerr == JSStreamNameExistErr || jerr == JSStreamSubjectOverlapErr)) {
    // Exists with another config: update what may change (duplicates,
    // message size); retention and storage cannot change in place.
    s = js_UpdateStream(&si, js_, &sc, nullptr, &jerr);
  }
  if (si)
    jsStreamInfo_Destroy(si);
  if (s != NATS_OK)
    return nats_error(s, "ensure stream " + cfg.stream + " (js error " +
                             std::to_string(static_cast<int>(jerr)) + ")");
  return caf::none;
}

caf::error nats_client::ensure_consumer(const nats_config& cfg,
                                        const std::string& pipeline,
                                        std::int64_t max_ack_pending,
                                        bool high) {
  subjects subj{cfg.prefix};
  auto durable = high ? subj.consumer_high(pipeline) : subj.consumer(pipeline);
  auto filter = high ? subj.jobs_high(pipeline) : subj.jobs(pipeline);
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = durable.c_str();
  cc.FilterSubject = filter.c_str();
  cc.AckPolicy = js_AckExplicit;
  cc.DeliverPolicy = js_DeliverAll;
  cc.AckWait = cfg.ack_wait.count() * 1000000LL;
  // troupe counts attempts in PostgreSQL; the broker must never give up.
  cc.MaxDeliver = -1;
  cc.MaxAckPending = max_ack_pending;
  cc.MaxWaiting = 512;
  jsConsumerInfo* ci = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  auto s = js_AddConsumer(&ci, js_, cfg.stream.c_str(), &cc, nullptr, &jerr);
  if (s != NATS_OK) {
    if (ci) {
      jsConsumerInfo_Destroy(ci);
      ci = nullptr;
    }
    s = js_UpdateConsumer(&ci, js_, cfg.stream.c_str(), &cc, nullptr, &jerr);
  }
  if (ci)
    jsConsumerInfo_Destroy(ci);
  if (s != NATS_OK)
    return nats_error(s, "ensure consumer " + durable + " (js error " +
                             std::to_string(static_cast<int>(jerr)) + ")");
  return caf::none;
}

caf::expected<std::int64_t>
nats_client::consumer_pending(const nats_config& cfg,
                              const std::string& pipeline) {
  jsConsumerInfo* ci = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  auto name = subjects{cfg.prefix}.consumer(pipeline);
  auto s = js_GetConsumerInfo(&ci, js_, cfg.stream.c_str(), name.c_str(),
                              nullptr, &jerr);
  if (s != NATS_OK)
    return nats_error(s, "consumer info " + name);
  auto n = static_cast<std::int64_t>(ci->NumPending);
  jsConsumerInfo_Destroy(ci);
  return n;
}

caf::error nats_client::publish_request(const std::string& subject,
                                        const std::string& reply,
                                        const std::string& data) {
  auto s =
      natsConnection_PublishRequest(conn_, subject.c_str(), reply.c_str(),
                                    data.data(), static_cast<int>(data.size()));
  if (s != NATS_OK)
    return nats_error(s, "publish request to " + subject);
  return caf::none;
}

std::string nats_client::last_permission_error() const {
  const char* last = nullptr;
  auto status = natsConnection_GetLastError(conn_, &last);
  return status == NATS_NOT_PERMITTED && last ? std::string{last}
                                              : std::string{};
}

caf::expected<std::vector<std::pair<std::string, std::uint64_t>>>
nats_client::stream_subjects(const std::string& stream,
                             const std::string& filter) {
  jsOptions o;
  jsOptions_Init(&o);
  o.Stream.Info.SubjectsFilter = filter.c_str();
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (auto s = js_GetStreamInfo(&si, js_, stream.c_str(), &o, &jerr);
      s != NATS_OK)
    return nats_error(s, "stream info of " + stream);
  std::vector<std::pair<std::string, std::uint64_t>> out;
  if (si->State.Subjects)
    for (int i = 0; i < si->State.Subjects->Count; ++i) {
      const auto& e = si->State.Subjects->List[i];
      if (e.Msgs > 0)
        out.emplace_back(e.Subject, e.Msgs);
    }
  jsStreamInfo_Destroy(si);
  return out;
}

caf::expected<bool> nats_client::consumer_exists(const std::string& stream,
                                                 const std::string& name) {
  jsConsumerInfo* ci = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  auto s = js_GetConsumerInfo(&ci, js_, stream.c_str(), name.c_str(), nullptr,
                              &jerr);
  if (ci)
    jsConsumerInfo_Destroy(ci);
  if (s == NATS_OK)
    return true;
  if (jerr == JSConsumerNotFoundErr)
    return false;
  return nats_error(s, "consumer info " + name);
}

void nats_client::delete_consumer(const std::string& stream,
                                  const std::string& name) {
  jsErrCode jerr = static_cast<jsErrCode>(0);
  js_DeleteConsumer(js_, stream.c_str(), name.c_str(), nullptr, &jerr);
}

std::string subject_tail(const std::string& job_id) {
  std::string out = job_id.empty() ? "_" : job_id;
  for (std::size_t i = 0; i < out.size(); ++i) {
    auto c = static_cast<unsigned char>(out[i]);
    bool empty_token =
        c == '.' && (i == 0 || i + 1 == out.size() || out[i - 1] == '.');
    if (c <= 0x20 || c == 0x7f || c == '*' || c == '>' || empty_token)
      out[i] = '_';
  }
  return out;
}

} // namespace troupe
